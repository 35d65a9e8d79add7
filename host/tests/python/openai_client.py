"""The official openai client, unmodified but for base_url, against a running stt-host.

Usage: openai_client.py BASE_URL AUDIO. Exits non-zero on any mismatch.
"""
import re
import sys

from openai import OpenAI

base, audio = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="unused")
want = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def words(t):
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", t.lower()).split())


for fmt in ["json", "text", "srt", "vtt", "verbose_json"]:
    with open(audio, "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format=fmt)
    text = r if isinstance(r, str) else r.text
    if fmt in ("srt", "vtt"):
        text = " ".join(l for l in text.splitlines() if "-->" not in l and not l.strip().isdigit() and l != "WEBVTT")
    assert words(text) == want, (fmt, text)
    if fmt == "verbose_json":
        assert r.language == "en" and abs(r.duration - 11.0) < 0.05 and len(r.segments) >= 1, r
    print(fmt, "ok")
