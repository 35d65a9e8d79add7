//! Whisper's 80-bin log-mel spectrogram, computed single-threaded (so it runs inside a WASI
//! instance) with the reference recipe: periodic Hann window of 400, hop 160, centred frames
//! with reflect padding, power spectrum, Slaney mel filters, log10 clamped at max − 8, (x+4)/4.

mod filters;
mod spectrogram;

pub use filters::mel_filters;
pub use spectrogram::log_mel_spectrogram;

pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
/// Frames in one 30 s window.
pub const N_FRAMES: usize = 3000;
/// Samples in one 30 s window.
pub const N_SAMPLES: usize = N_FRAMES * HOP_LENGTH;
