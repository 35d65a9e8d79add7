"""The official openai client choosing models, against a running host.

Usage: openai_models.py BASE_URL DATA_DIR. Prints one "... ok" line per check; exits non-zero on
any mismatch.
"""
import re
import sys

from openai import OpenAI

base, data = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base}/v1", api_key="unused")


def words(t):
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", t.lower()).split())


listed = {m.id: m.to_dict() for m in client.models.list()}
assert set(listed) == {"tiny.en", "base"}, listed
assert all(m["weights"] == "preloaded" for m in listed.values()), listed
assert listed["base"]["multilingual"] and len(listed["base"]["languages"]) == 99, listed["base"]
print("models ok")

# Each model by name; the response says which model and which weights answered.
for model in ("tiny.en", "base"):
    with open(f"{data}/jfk.flac", "rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(model=model, file=f)
    r = raw.parse()
    assert "ask not what your country can do for you" in words(r.text), (model, r.text)
    assert raw.headers["x-stt-model"] == model, raw.headers
    assert raw.headers["x-stt-model-digest"] == listed[model]["weights_digest"], raw.headers
    assert abs(float(raw.headers["x-stt-audio-seconds"]) - 11.0) < 0.05, raw.headers
    assert raw.headers["x-stt-component-digest"].startswith("sha256:"), raw.headers
    print(model, "ok")

# German to English: `whisper-1` on the translations route goes to the multilingual model.
with open(f"{data}/multi/fleurs_de_000.ogg", "rb") as f:
    raw = client.audio.translations.with_raw_response.create(model="whisper-1", file=f)
r = raw.parse()
assert raw.headers["x-stt-model"] == "base", raw.headers
assert "hong kong" in words(r.text) and " the " in f" {words(r.text)} ", r.text
print("translation ok")
