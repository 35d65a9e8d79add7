//! The channel order Vorbis defines for one to eight channels (Vorbis I §4.3.9), which Opus's
//! channel mapping family 1 shares (RFC 7845 §5.1.1.2), and the reordering of frames into the
//! layout's own order (positions by their bit), the order symphonia's buffers and
//! [`super::downmix::Downmix`] take channels in. FFmpeg names these layouts the same way
//! (3.0, quad, 5.0, 5.1, 6.1, 7.1).

use symphonia::core::audio::{Channels, Position};

/// The positions of a Vorbis (or Opus family 1) stream's channels, in stream order.
fn positions(count: usize) -> Option<Vec<Position>> {
    use Position as P;
    let (fl, fc, fr) = (P::FRONT_LEFT, P::FRONT_CENTER, P::FRONT_RIGHT);
    let (rl, rr, sl, sr) = (P::REAR_LEFT, P::REAR_RIGHT, P::SIDE_LEFT, P::SIDE_RIGHT);
    Some(match count {
        1 => vec![fc],
        2 => vec![fl, fr],
        3 => vec![fl, fc, fr],
        4 => vec![fl, fr, rl, rr],
        5 => vec![fl, fc, fr, rl, rr],
        6 => vec![fl, fc, fr, rl, rr, P::LFE1],
        7 => vec![fl, fc, fr, sl, sr, P::REAR_CENTER, P::LFE1],
        8 => vec![fl, fc, fr, sl, sr, rl, rr, P::LFE1],
        _ => return None,
    })
}

/// Frames in Vorbis channel order → frames in the layout's order.
#[derive(Debug, Clone)]
pub struct VorbisOrder {
    /// For each channel of the layout, in its order, the stream's channel it comes from.
    from: Vec<usize>,
    layout: Position,
}

impl VorbisOrder {
    /// `None` beyond eight channels, where Vorbis defines no order.
    pub fn new(count: usize) -> Option<Self> {
        let p = positions(count)?;
        let mut from: Vec<usize> = (0..count).collect();
        from.sort_by_key(|&i| p[i].bits());
        let layout = p.iter().fold(Position::empty(), |all, &one| all | one);
        Some(Self { from, layout })
    }

    /// The layout the reordered frames have.
    pub fn channels(&self) -> Channels {
        Channels::Positioned(self.layout)
    }

    /// Interleaved frames in stream order, appended to `out` in the layout's order.
    pub fn reorder_into(&self, interleaved: &[f32], out: &mut Vec<f32>) {
        let n = self.from.len();
        out.extend(interleaved.chunks_exact(n).flat_map(|f| self.from.iter().map(move |&i| f[i])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_one_comes_out_in_the_layouts_order() {
        let o = VorbisOrder::new(6).expect("5.1");
        // Stream order FL FC FR RL RR LFE, one frame numbered by channel.
        let mut out = Vec::new();
        o.reorder_into(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &mut out);
        // Layout order FL FR FC LFE RL RR.
        assert_eq!(out, [0.0, 2.0, 1.0, 5.0, 3.0, 4.0]);
        let want = Position::FRONT_LEFT
            | Position::FRONT_RIGHT
            | Position::FRONT_CENTER
            | Position::LFE1
            | Position::REAR_LEFT
            | Position::REAR_RIGHT;
        assert_eq!(o.channels(), Channels::Positioned(want));
    }

    #[test]
    fn every_count_up_to_eight_has_an_order_and_none_beyond() {
        for n in 1..=8 {
            let o = VorbisOrder::new(n).expect("order");
            let mut sorted = o.from.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "{n}: a permutation");
            assert_eq!(o.channels().count(), n);
        }
        assert!(VorbisOrder::new(9).is_none());
        assert!(VorbisOrder::new(0).is_none());
    }
}
