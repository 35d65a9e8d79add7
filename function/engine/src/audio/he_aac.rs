//! HE-AAC (SBR, and v2's parametric stereo) read as its AAC-LC core. symphonia decodes AAC-LC
//! only and refuses an AudioSpecificConfig that signals SBR explicitly (object type 5 or 29);
//! the core it carries is ordinary AAC-LC at half the output rate, which holds the speech band
//! (SBR rebuilds the frequencies above the core's, v2 the stereo image of a mono core: Whisper
//! hears neither, at 16 kHz mono). So such a config is rewritten to the core's own, and
//! symphonia decodes the core; SBR data in the frames is skipped as it already is when SBR is
//! signalled only there (implicitly).

use symphonia::core::io::{BitReaderLtr, ReadBitsLtr};

/// MPEG-4 Audio object types (ISO/IEC 14496-3, 1.5.1.1).
const AAC_LC: u32 = 2;
const SBR: u32 = 5;
const PS: u32 = 29;

/// Sampling rates by `samplingFrequencyIndex` (index 15: the rate follows in 24 bits).
const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// The AAC-LC core of an explicitly signalled HE-AAC config: its own config and sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    pub config: Vec<u8>,
    pub rate: u32,
}

/// `config` (an AudioSpecificConfig) rewritten to its AAC-LC core when it signals SBR or PS
/// explicitly over AAC-LC; `None` for any other config (left to symphonia as it is) and for
/// one too short to read.
pub fn core_of(config: &[u8]) -> Option<Core> {
    let mut bits = BitReaderLtr::new(config);
    let r = &mut bits;
    if !matches!(object_type(r)?, SBR | PS) {
        return None;
    }
    // The first rate is the core's; the extension's (SBR's output) follows the channels.
    let (index, rate) = frequency(r)?;
    let channels = r.read_bits_leq32(4).ok()?;
    frequency(r)?;
    if object_type(r)? != AAC_LC {
        return None;
    }
    // GASpecificConfig: frame length, then what an LC core's does not use.
    let short_frames = r.read_bool().ok()?;
    let mut out = BitWriter::default();
    out.put(AAC_LC, 5);
    out.put(index, 4);
    if index == 15 {
        out.put(rate, 24);
    }
    out.put(channels, 4);
    out.put(u32::from(short_frames), 1);
    // dependsOnCoreCoder, extensionFlag.
    out.put(0, 2);
    Some(Core { config: out.finish(), rate })
}

fn object_type(r: &mut BitReaderLtr<'_>) -> Option<u32> {
    match r.read_bits_leq32(5).ok()? {
        31 => Some(32 + r.read_bits_leq32(6).ok()?),
        t => Some(t),
    }
}

/// `(samplingFrequencyIndex, rate)`; `None` for a reserved index or a rate of 0.
fn frequency(r: &mut BitReaderLtr<'_>) -> Option<(u32, u32)> {
    let index = r.read_bits_leq32(4).ok()?;
    let rate = match index {
        15 => r.read_bits_leq32(24).ok()?,
        i => *RATES.get(i as usize)?,
    };
    (rate > 0).then_some((index, rate))
}

/// Bits written most significant first, the last byte padded with zeros.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, width: u32) {
        for i in (0..width).rev() {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if let (1, Some(last)) = ((value >> i) & 1, self.bytes.last_mut()) {
                *last |= 0x80 >> (self.used % 8);
            }
            self.used += 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let padded = format!("{s}{}", "0".repeat((8 - s.len() % 8) % 8));
        padded
            .as_bytes()
            .chunks(8)
            .map(|b| u8::from_str_radix(std::str::from_utf8(b).unwrap(), 2).unwrap())
            .collect()
    }

    #[test]
    fn explicit_sbr_and_ps_become_their_lc_core() {
        // HE-AAC: SBR, core 24 kHz (index 6), mono, output 48 kHz (index 3), over AAC-LC.
        let he = bits("00101 0110 0001 0011 00010 000");
        let lc = bits("00010 0110 0001 000");
        assert_eq!(core_of(&he), Some(Core { config: lc.clone(), rate: 24_000 }));
        // HE-AAC v2: PS, the same core.
        assert_eq!(
            core_of(&bits("11101 0110 0001 0011 00010 000")),
            Some(Core { config: lc, rate: 24_000 })
        );
        // A core rate given in 24 bits (index 15), stereo, 960-sample frames.
        let explicit = bits("00101 1111 000000000101110111000000 0010 0011 00010 100");
        assert_eq!(
            core_of(&explicit),
            Some(Core {
                config: bits("00010 1111 000000000101110111000000 0010 100"),
                rate: 24_000
            })
        );
    }

    #[test]
    fn other_configs_are_left_alone() {
        // AAC-LC with FFmpeg's backward-compatible "no SBR" extension; plain LC; SBR over AAC
        // Main (object type 1); a reserved rate index; cut short; empty.
        for config in [
            vec![0x13, 0x08, 0x56, 0xe5, 0x00],
            vec![0x13, 0x08],
            bits("00101 0110 0001 0011 00001 000"),
            bits("00101 1101 0001 0011 00010 000"),
            bits("00101 0110 00"),
            vec![],
        ] {
            assert_eq!(core_of(&config), None, "{config:02x?}");
        }
    }
}
