"""The samples faster-whisper 1.2.1 hands Whisper (`decode_audio`: PyAV -> FFmpeg's decoders
-> swresample's `aformat` to s16 mono 16 kHz), for the engine's decoding test
(function/engine/tests/reference_samples.rs): per input its length and every k-th sample as an
int16, so that the file stays small.

Inputs: the shared data's files that FFmpeg and the engine decode with the same decoder (Opus is
left out: FFmpeg's own Opus decoder is not libopus, see docs/ARCHITECTURE.md), and synthetic
WAVs for what the data lacks (multichannel layouts, named by an extensible header's channel
mask or by none, a rate whose ratio to 16 kHz needs interpolated filter phases), generated from
a formula the test repeats; and a three-channel FLAC (FLAC names its channels by their count)
encoded here from the same formula into bench/reference/, which the test reads.

    python3 bench/scripts/pyav_pcm_reference.py --data ../shared/data --out bench/reference/pyav_pcm.json
"""

import argparse
import io
import json
import os
import struct
import wave

import av

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

# (rate, channels, frames, mask): the synthetic WAVs; a mask gives the file an extensible header
# (WAVE_FORMAT_EXTENSIBLE) naming its channels, as hound and most recorders write more than two.
SYNTHETIC = [(16000, 2, 4000, None), (16000, 6, 4000, None), (48000, 5, 12000, None),
             (48000, 8, 12000, None), (22058, 1, 6000, None), (44100, 2, 11025, None),
             (16000, 3, 4000, 0x7), (16000, 4, 4000, 0xF), (48000, 8, 12000, 0xFF)]
# (file, rate, channels, frames, layout): FLAC files encoded from the same formula.
FLAC = [("three_channels.flac", 16000, 3, 4000, "3.0")]
POINTS = 1500
# KSDATAFORMAT_SUBTYPE_PCM.
PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")


def synthetic_samples(rate, channels, frames):
    """Interleaved int16 samples: a 31-bit LCG's noise on a per-channel ramp (the test's formula)."""
    state = rate * 31 + channels
    out = []
    for i in range(frames * channels):
        state = (state * 1103515245 + 12345) % (1 << 31)
        out.append((state >> 16) % 16001 - 8000 + ((i % channels) * 1000))
    return np.array(out, dtype="<i2")


def synthetic_wav(rate, channels, frames, mask):
    data = synthetic_samples(rate, channels, frames).tobytes()
    if mask is None:
        buf = io.BytesIO()
        w = wave.open(buf, "wb")
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
        w.close()
        buf.seek(0)
        return buf
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * channels * 2, channels * 2, 16,
                      22, 16, mask) + PCM_GUID
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    return io.BytesIO(b"RIFF" + struct.pack("<I", len(body)) + body)


def synthetic_name(rate, channels, frames, mask):
    return f"{rate}_{channels}_{frames}" + ("" if mask is None else f"_{mask}")


def write_flac(path, rate, channels, frames, layout):
    samples = synthetic_samples(rate, channels, frames).reshape(1, -1)
    with av.open(path, "w") as out:
        stream = out.add_stream("flac", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=layout)
        frame.sample_rate = rate
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            out.mux(packet)


def entry(pcm):
    ints = np.rint(pcm * 32768).astype(int)
    stride = max(1, len(ints) // POINTS)
    return {"len": int(len(ints)), "stride": stride, "samples": ints[::stride].tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ref = {"files": {}, "synthetic": {}, "encoded": {}}
    for f in FILES:
        ref["files"][f] = entry(decode_audio(os.path.join(a.data, f)))
    for spec in SYNTHETIC:
        ref["synthetic"][synthetic_name(*spec)] = entry(decode_audio(synthetic_wav(*spec)))
    for name, *spec in FLAC:
        path = os.path.join(os.path.dirname(os.path.abspath(a.out)), name)
        write_flac(path, *spec)
        ref["encoded"][name] = entry(decode_audio(path))
    with open(a.out, "w") as fh:
        json.dump(ref, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
