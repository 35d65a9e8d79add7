//! A long recording transcribed as independent chunks ([`crate::Engine::chunk`]), here or by other
//! instances, and put back together: each chunk's segments are placed in the recording and
//! released in order, whatever order the chunks finish in. Silent chunks count as done with no
//! segments: nobody transcribes them.

use crate::decoding::Task;
use crate::transcribe::{Segment, Transcript};
use crate::vad::Chunk;

pub struct ChunkedTranscription {
    chunks: Vec<Chunk>,
    /// Where the chunks not cut yet start (each chunk is cut before the rest is looked at).
    rest_from: Option<usize>,
    /// Seconds of the whole recording.
    duration: f64,
    /// The energy of the recording's loudest frame, against which a chunk is silent.
    loudest: f32,
    /// Segments (in their chunk's time) of chunks that finished before an earlier one.
    waiting: Vec<Option<Vec<Segment>>>,
    /// The first chunk not yet released.
    next: usize,
    segments: Vec<Segment>,
}

impl ChunkedTranscription {
    pub(crate) fn new(
        chunks: Vec<Chunk>,
        rest_from: Option<usize>,
        duration: f64,
        loudest: f32,
    ) -> Self {
        let mut job = Self {
            chunks: Vec::new(),
            rest_from,
            duration,
            loudest,
            waiting: Vec::new(),
            next: 0,
            segments: Vec::new(),
        };
        job.extend(chunks, rest_from);
        job
    }

    /// The energy of the recording's loudest frame ([`crate::Vad::next_chunk`]).
    pub(crate) fn loudest(&self) -> f32 {
        self.loudest
    }

    /// The chunks cut so far.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Where the chunks still to cut start, if any ([`crate::Engine::cut_next`]).
    pub(crate) fn rest_from(&self) -> Option<usize> {
        self.rest_from
    }

    /// Adds the chunks cut next; the rest, if any, starts at `rest_from`.
    /// Silent chunks are done already, with no segments.
    pub(crate) fn extend(&mut self, chunks: Vec<Chunk>, rest_from: Option<usize>) {
        self.waiting.extend(chunks.iter().map(|c| c.is_silent().then(Vec::new)));
        self.chunks.extend(chunks);
        self.rest_from = rest_from;
        // Silent chunks next in line are released now (they have no segments to tell): a chunk
        // after one was not cut before it, so none of them has segments waiting.
        self.release(&mut |_| {});
    }

    /// Records chunk `i`'s segments, timed within the chunk. Every segment now in order (all
    /// chunks before it done) is placed in the recording, numbered and told to `on_segment`.
    /// A chunk recorded twice keeps its first segments.
    pub fn complete(
        &mut self,
        i: usize,
        segments: Vec<Segment>,
        on_segment: &mut dyn FnMut(&Segment),
    ) {
        match self.waiting.get_mut(i) {
            Some(slot) if i >= self.next && slot.is_none() => *slot = Some(segments),
            _ => return,
        }
        self.release(on_segment);
    }

    /// Releases the recorded chunks that are next in line.
    fn release(&mut self, on_segment: &mut dyn FnMut(&Segment)) {
        while let Some(Some(done)) = self.waiting.get_mut(self.next).map(Option::take) {
            let chunk = &self.chunks[self.next];
            for mut s in done {
                chunk.restore(&mut s);
                s.id = self.segments.len();
                on_segment(&s);
                self.segments.push(s);
            }
            self.next += 1;
        }
    }

    /// Whether every chunk has been cut and recorded.
    pub fn is_complete(&self) -> bool {
        self.rest_from.is_none() && self.next == self.chunks.len()
    }

    /// How many chunks are silent (not transcribed).
    pub fn silent(&self) -> usize {
        self.chunks.iter().filter(|c| c.is_silent()).count()
    }

    /// The transcript of the recording, from the chunks released so far.
    pub fn finish(self, language: String, task: Task) -> Transcript {
        Transcript::of_segments(self.segments, language, task, self.duration)
    }
}
