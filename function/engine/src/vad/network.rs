//! Silero VAD v6 (16 kHz), the network of the `silero-vad` package's ONNX model: a learned STFT
//! (a 256-tap convolution, stride 128, magnitudes of 129 bins), four convolutions with ReLU, an
//! LSTM cell carried from one 32 ms window to the next, and a 1×1 convolution with a sigmoid.
//! Each window sees the 64 samples before it (its context) and is reflect-padded by 64 after.
//!
//! Written on candle rather than run by an ONNX runtime: the convolutions of a block of windows
//! are batched into a few large products (the windows do not depend on each other until the
//! LSTM), and only the recurrence runs window by window, in plain f32x4 code.

use candle_core::{Device, Tensor};
use wide::f32x4;

use crate::error::EngineError;
use crate::model::tensor_file::TensorFile;

/// Samples per window (32 ms at 16 kHz): one speech probability each.
pub const WINDOW: usize = 512;
/// Samples of the previous window each window sees before its own.
const CONTEXT: usize = 64;
/// Reflect padding after each window, as the STFT's `padding`.
const REFLECT: usize = 64;
const INPUT: usize = CONTEXT + WINDOW + REFLECT;
const HOP: usize = 128;
const BINS: usize = 129;
const HIDDEN: usize = 128;
const GATES: usize = 4 * HIDDEN;
/// Windows whose convolutions are computed together (≈ 8 s of audio, ≈ 2.7 MB of activations).
const BLOCK: usize = 256;

/// Tensor names as in the converted `model.safetensors` (`stt-models fetch silero-vad`).
const STFT: &str = "stft.basis";
const CONVS: [(&str, usize, usize, usize); 4] = [
    ("encoder.0", BINS, 128, 1),
    ("encoder.1", 128, 64, 2),
    ("encoder.2", 64, 64, 2),
    ("encoder.3", 64, HIDDEN, 1),
];

struct Conv {
    weight: Tensor,
    /// `[1, out, 1]`, broadcast over the batch and time.
    bias: Tensor,
    stride: usize,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.conv1d(&self.weight, 1, self.stride, 1, 1)?.broadcast_add(&self.bias)?.relu()
    }
}

pub struct Network {
    stft: Tensor,
    convs: Vec<Conv>,
    /// LSTM input weights, transposed for `x · W_ihᵀ` over a block: `[HIDDEN, GATES]`.
    w_ih_t: Tensor,
    /// LSTM recurrent weights, row per gate unit: `GATES × HIDDEN`.
    w_hh: Vec<f32>,
    /// `b_ih + b_hh`.
    bias: Vec<f32>,
    out_w: Vec<f32>,
    out_b: f32,
}

fn read(f: &TensorFile, name: &str, shape: &[usize]) -> candle_core::Result<Vec<f32>> {
    f.expect_shape(name, shape)?;
    f.rows_f32(name, 0..shape[0])
}

impl Network {
    pub fn load(file: &TensorFile) -> Result<Self, EngineError> {
        Ok(Self::read(file)?)
    }

    fn read(f: &TensorFile) -> candle_core::Result<Self> {
        let dev = Device::Cpu;
        let stft = Tensor::from_vec(read(f, STFT, &[2 * BINS, 1, 256])?, (2 * BINS, 1, 256), &dev)?;
        let mut convs = Vec::new();
        for (name, cin, cout, stride) in CONVS {
            let w = read(f, &format!("{name}.weight"), &[cout, cin, 3])?;
            let b = read(f, &format!("{name}.bias"), &[cout])?;
            convs.push(Conv {
                weight: Tensor::from_vec(w, (cout, cin, 3), &dev)?,
                bias: Tensor::from_vec(b, (1, cout, 1), &dev)?,
                stride,
            });
        }
        let w_ih = read(f, "lstm.weight_ih", &[GATES, HIDDEN])?;
        let w_ih_t = Tensor::from_vec(w_ih, (GATES, HIDDEN), &dev)?.t()?.contiguous()?;
        let w_hh = read(f, "lstm.weight_hh", &[GATES, HIDDEN])?;
        let b_ih = read(f, "lstm.bias_ih", &[GATES])?;
        let b_hh = read(f, "lstm.bias_hh", &[GATES])?;
        let bias = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
        let out_w = read(f, "output.weight", &[1, HIDDEN, 1])?;
        let out_b = read(f, "output.bias", &[1])?[0];
        Ok(Self { stft, convs, w_ih_t, w_hh, bias, out_w, out_b })
    }

    /// The speech probability of every 512-sample window of `pcm` (the last one zero-padded),
    /// with the LSTM state carried from the first window to the last.
    pub fn probabilities(&self, pcm: &[f32]) -> Result<Vec<f32>, EngineError> {
        let windows = pcm.len().div_ceil(WINDOW);
        let mut out = Vec::with_capacity(windows);
        let mut state = Lstm::default();
        let mut first = 0;
        while first < windows {
            let n = BLOCK.min(windows - first);
            let x = self.block_inputs(pcm, first, n)?;
            for row in x.chunks_exact(GATES) {
                let h = state.step(row, &self.bias, &self.w_hh);
                out.push(self.output(h));
            }
            first += n;
        }
        Ok(out)
    }

    /// The LSTM's input projection `x · W_ihᵀ` of windows `first..first + n`, `n × GATES`.
    fn block_inputs(&self, pcm: &[f32], first: usize, n: usize) -> candle_core::Result<Vec<f32>> {
        let mut input = vec![0.0f32; n * INPUT];
        for (w, row) in input.chunks_exact_mut(INPUT).enumerate() {
            let start = (first + w) * WINDOW;
            // Context and window: samples start − 64 .. start + 512, zero outside the audio.
            for (j, v) in row[..CONTEXT + WINDOW].iter_mut().enumerate() {
                let i = (start + j).checked_sub(CONTEXT);
                *v = i.and_then(|i| pcm.get(i)).copied().unwrap_or(0.0);
            }
            // Reflect padding: x[n], x[n+1], … = x[n−2], x[n−3], … (the edge is not repeated).
            let edge = CONTEXT + WINDOW - 1;
            for j in 0..REFLECT {
                row[edge + 1 + j] = row[edge - 1 - j];
            }
        }
        let x = Tensor::from_vec(input, (n, 1, INPUT), &Device::Cpu)?;
        let spec = x.conv1d(&self.stft, 0, HOP, 1, 1)?;
        let re = spec.narrow(1, 0, BINS)?;
        let im = spec.narrow(1, BINS, BINS)?;
        let mut h = (re.sqr()? + im.sqr()?)?.sqrt()?;
        for c in &self.convs {
            h = c.forward(&h)?;
        }
        // One time step is left: [n, HIDDEN, 1] → [n, HIDDEN].
        let h = h.squeeze(2)?;
        h.matmul(&self.w_ih_t)?.flatten_all()?.to_vec1()
    }

    fn output(&self, h: &[f32; HIDDEN]) -> f32 {
        let z = self.out_b + h.iter().zip(&self.out_w).map(|(h, w)| h.max(0.0) * w).sum::<f32>();
        sigmoid(z)
    }
}

#[derive(Clone)]
struct Lstm {
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
    gates: [f32; GATES],
}

impl Default for Lstm {
    fn default() -> Self {
        Self { h: [0.0; HIDDEN], c: [0.0; HIDDEN], gates: [0.0; GATES] }
    }
}

impl Lstm {
    /// One step of PyTorch's `LSTMCell` (gates in the order input, forget, cell, output), given
    /// the input's projection `x · W_ihᵀ`.
    fn step(&mut self, x_proj: &[f32], bias: &[f32], w_hh: &[f32]) -> &[f32; HIDDEN] {
        let h: &[[f32; 4]] = self.h.as_chunks::<4>().0;
        for (g, ((xp, b), w)) in
            self.gates.iter_mut().zip(x_proj.iter().zip(bias).zip(w_hh.chunks_exact(HIDDEN)))
        {
            let w = w.as_chunks::<4>().0;
            let acc = w
                .iter()
                .zip(h)
                .fold(f32x4::ZERO, |acc, (w, h)| acc + f32x4::from(*w) * f32x4::from(*h));
            *g = xp + b + acc.reduce_add();
        }
        for k in 0..HIDDEN {
            let i = sigmoid(self.gates[k]);
            let f = sigmoid(self.gates[HIDDEN + k]);
            let g = self.gates[2 * HIDDEN + k].tanh();
            let o = sigmoid(self.gates[3 * HIDDEN + k]);
            self.c[k] = f * self.c[k] + i * g;
            self.h[k] = o * self.c[k].tanh();
        }
        &self.h
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
