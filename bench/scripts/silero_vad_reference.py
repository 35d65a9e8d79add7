"""Reference speech detection: the silero-vad package (6.2.3, pinned in models/manifest.json) on
the samples our decoder produces. Probabilities come from the package's default ONNX model
(silero_vad.onnx) run by onnxruntime window by window as its OnnxWrapper does (512 samples with
the previous 64 as context, state carried); spans from the package's own
get_speech_timestamps_from_probs, read from the wheel's utils_vad.py (it needs no torch, unlike
the module around it), with faster-whisper's VadOptions: the vad_filter defaults and the
BatchedInferencePipeline chunking (max_speech_duration_s=30, min_silence_duration_ms=160).

Writes {"silero_vad", "onnxruntime", "model", "clips": {path: {"samples", "probs", "spans",
"chunk_spans"}}}: bench/reference/silero_vad.json, which the engine's VAD tests read. Also prints
the time onnxruntime takes per minute of audio (one thread).
"""
import argparse
import ast
import json
import os
import tempfile
import time
import zipfile

import numpy
import onnxruntime

p = argparse.ArgumentParser()
p.add_argument("--wheel", required=True, help="the pinned silero-vad wheel")
p.add_argument("--pcm", required=True, help="folder of <file>.f32 made by `stt-bench pcm`")
p.add_argument("--out", required=True)
p.add_argument("files", nargs="+", help="names of the .f32 files (without .f32)")
a = p.parse_args()

with tempfile.TemporaryDirectory() as tmp:
    with zipfile.ZipFile(a.wheel) as z:
        z.extract("silero_vad/data/silero_vad.onnx", tmp)
        utils = z.read("silero_vad/utils_vad.py").decode()
        version = next(l.split(":", 1)[1].strip() for l in z.read(
            [n for n in z.namelist() if n.endswith("METADATA")][0]).decode().splitlines()
            if l.startswith("Version:"))
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(f"{tmp}/silero_vad/data/silero_vad.onnx",
                                           providers=["CPUExecutionProvider"], sess_options=opts)

# The package's function alone, compiled from its source (its module imports torch).
tree = ast.parse(utils)
fn = next(n for n in tree.body
          if isinstance(n, ast.FunctionDef) and n.name == "get_speech_timestamps_from_probs")
namespace = {"List": list}
exec(compile(ast.Module(body=[fn], type_ignores=[]), "utils_vad.py", "exec"), namespace)
spans_from_probs = namespace["get_speech_timestamps_from_probs"]


def probabilities(audio):
    state = numpy.zeros((2, 1, 128), dtype=numpy.float32)
    context = numpy.zeros((1, 64), dtype=numpy.float32)
    sr = numpy.array(16000, dtype=numpy.int64)
    out = []
    for start in range(0, len(audio), 512):
        chunk = audio[start:start + 512]
        if len(chunk) < 512:
            chunk = numpy.pad(chunk, (0, 512 - len(chunk)))
        x = numpy.concatenate([context, chunk[None, :]], axis=1)
        prob, state = session.run(None, {"input": x, "state": state, "sr": sr})
        context = x[:, -64:]
        out.append(float(prob[0, 0]))
    return out


FILTER = dict(threshold=0.5, min_speech_duration_ms=0, max_speech_duration_s=float("inf"),
              min_silence_duration_ms=2000, speech_pad_ms=400)
CHUNKS = dict(FILTER, max_speech_duration_s=30, min_silence_duration_ms=160)

clips, seconds, audio_seconds = {}, 0.0, 0.0
for name in a.files:
    audio = numpy.fromfile(os.path.join(a.pcm, os.path.basename(name) + ".f32"), dtype="<f4")
    t = time.process_time()
    probs = probabilities(audio)
    seconds += time.process_time() - t
    audio_seconds += len(audio) / 16000
    spans = lambda o: [[s["start"], s["end"]] for s in
                       spans_from_probs(probs, audio_length_samples=len(audio), **o)]
    clips[name] = {"samples": len(audio), "probs": [round(p, 5) for p in probs],
                   "spans": spans(FILTER), "chunk_spans": spans(CHUNKS)}

print(f"onnxruntime: {seconds / audio_seconds * 60:.3f} s CPU per minute of audio "
      f"({audio_seconds:.0f} s of audio)")
with open(a.out, "w") as f:
    json.dump({"silero_vad": version, "onnxruntime": onnxruntime.__version__,
               "model": "silero_vad/data/silero_vad.onnx", "input": "engine-decoded samples",
               "clips": clips}, f, separators=(",", ":"))
    f.write("\n")
