"""The samples faster-whisper 1.2.1 hands Whisper (`decode_audio`: PyAV -> FFmpeg's decoders
-> swresample's `aformat` to s16 mono 16 kHz), for the engine's decoding test
(function/engine/tests/reference_samples.rs): per input its length and every k-th sample as an
int16, so that the file stays small.

Inputs: the shared data's files that FFmpeg and the engine decode with the same decoder (Opus is
left out: FFmpeg's own Opus decoder is not libopus, see docs/ARCHITECTURE.md), and synthetic
WAVs for what the data lacks (multichannel layouts, a rate whose ratio to 16 kHz needs
interpolated filter phases), generated from a formula the test repeats.

    python3 bench/scripts/pyav_pcm_reference.py --data ../shared/data --out bench/reference/pyav_pcm.json
"""

import argparse
import io
import json
import os
import wave

import numpy as np
from faster_whisper.audio import decode_audio

FILES = [
    "jfk.flac",
    "dev/jfk.mp3",
    "dev/ldc93s1_8k.wav",
    "dev/sr_english.wav",
    "dev/sr_english_16bit.aiff",
    "dev/ls_test-clean_1995-1837-0001.wav",
    "multi/cv_ja_24511055.mp3",
    "multi/deepspeech_ru.wav",
]

# (rate, channels, frames): the synthetic WAVs.
SYNTHETIC = [(16000, 2, 4000), (16000, 6, 4000), (48000, 5, 12000), (48000, 8, 12000), (22058, 1, 6000), (44100, 2, 11025)]
POINTS = 1500


def synthetic_samples(rate, channels, frames):
    """Interleaved int16 samples: a 31-bit LCG's noise on a per-channel ramp (the test's formula)."""
    state = rate * 31 + channels
    out = []
    for i in range(frames * channels):
        state = (state * 1103515245 + 12345) % (1 << 31)
        out.append((state >> 16) % 16001 - 8000 + ((i % channels) * 1000))
    return np.array(out, dtype="<i2")


def synthetic_wav(rate, channels, frames):
    buf = io.BytesIO()
    w = wave.open(buf, "wb")
    w.setnchannels(channels)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(synthetic_samples(rate, channels, frames).tobytes())
    w.close()
    buf.seek(0)
    return buf


def entry(pcm):
    ints = np.rint(pcm * 32768).astype(int)
    stride = max(1, len(ints) // POINTS)
    return {"len": int(len(ints)), "stride": stride, "samples": ints[::stride].tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ref = {"files": {}, "synthetic": {}}
    for f in FILES:
        ref["files"][f] = entry(decode_audio(os.path.join(a.data, f)))
    for rate, ch, frames in SYNTHETIC:
        ref["synthetic"][f"{rate}_{ch}_{frames}"] = entry(decode_audio(synthetic_wav(rate, ch, frames)))
    with open(a.out, "w") as fh:
        json.dump(ref, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
