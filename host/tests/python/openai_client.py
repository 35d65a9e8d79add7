"""The official openai client, unmodified but for base_url, against a running host.

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
        assert r.language == "english" and abs(r.duration - 11.0) < 0.05 and len(r.segments) >= 1, r
    if fmt in ("json", "verbose_json"):
        assert r.to_dict()["usage"] == {"type": "duration", "seconds": 11}, r
    print(fmt, "ok")

# Word-level timestamps, alone and with segments.
for granularities in (["word"], ["word", "segment"]):
    with open(audio, "rb") as f:
        r = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                               timestamp_granularities=granularities)
    assert words(" ".join(w.word for w in r.words)) == want, r.words
    assert r.words[0].word == "And" and 0 <= r.words[0].start < r.words[0].end <= r.words[1].start, r.words
    assert all(a.end <= b.start + 1e-9 for a, b in zip(r.words, r.words[1:])), r.words
    assert (r.segments is not None) == ("segment" in granularities), r
    print("words", "+".join(granularities), "ok")

# Beam search through the extension field.
with open(audio, "rb") as f:
    r = client.audio.transcriptions.create(model="whisper-1", file=f, extra_body={"beam_size": 5})
assert words(r.text) == want, r.text
print("beam_size ok")

# Streaming: OpenAI's transcript events, whose deltas join to the text.
with open(audio, "rb") as f:
    events = list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
done = events[-1]
assert done.type == "transcript.text.done" and "".join(deltas) == done.text, events
assert words(done.text) == want and done.usage.seconds == 11, done
print("stream ok")
