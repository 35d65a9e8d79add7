#!/usr/bin/env bash
# Seeds for the fuzz targets from real inputs: the shared audio (every format the decoder takes,
# WebM/Matroska made with imageio-ffmpeg's ffmpeg when installed), real multipart bodies and
# queries, the project's manifests, and the head of a real CTranslate2 model.bin.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${STT_DATA_DIR:-../shared/data}
wheels=${STT_WHEEL_CACHE:-$HOME/.cache/stt-edge/wheels}
c=fuzz/corpus
mkdir -p $c/audio_decode $c/multipart_form $c/query_params $c/spin_manifest $c/ct2_model_bin

# Audio: files up to 1 MiB as they are, the heads of larger ones.
for f in "$data"/jfk.flac "$data"/dev/* "$data"/multi/* "$data"/bad/*; do
  case "$f" in *.tsv|*.md|*.txt) continue ;; esac
  head -c 1048576 "$f" > "$c/audio_decode/$(basename "$f")"
done
if ff=$(python3 -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())" 2>/dev/null); then
  "$ff" -y -loglevel error -t 4 -i "$data/jfk.flac" -c:a libopus -b:a 16k "$c/audio_decode/jfk.webm"
  "$ff" -y -loglevel error -t 4 -i "$data/jfk.flac" -c:a libvorbis "$c/audio_decode/jfk.mka"
  "$ff" -y -loglevel error -t 4 -i "$data/jfk.flac" -c:a aac -b:a 32k "$c/audio_decode/jfk.m4a"
  "$ff" -y -loglevel error -t 4 -i "$data/jfk.flac" -c:a mp2 "$c/audio_decode/jfk.mp2"
  "$ff" -y -loglevel error -t 4 -i "$data/jfk.flac" -c:a alac "$c/audio_decode/jfk_alac.caf"
  # Three channels: an extensible WAV (ffmpeg names more than two channels by a mask) and a FLAC.
  "$ff" -y -loglevel error -t 2 -i "$data/jfk.flac" -ac 3 "$c/audio_decode/jfk_3ch.wav"
  "$ff" -y -loglevel error -t 2 -i "$data/jfk.flac" -ac 3 "$c/audio_decode/jfk_3ch.flac"
  # Surround Vorbis (lewton) and Opus (several streams), short and at low rates.
  "$ff" -y -loglevel error -t 1 -i "$data/jfk.flac" -ac 6 -c:a libvorbis -q:a 0 "$c/audio_decode/jfk_5.1.ogg"
  "$ff" -y -loglevel error -t 1 -i "$data/jfk.flac" -ac 6 -c:a libopus -b:a 48k "$c/audio_decode/jfk_5.1.opus"
  "$ff" -y -loglevel error -t 1 -i "$data/jfk.flac" -af aformat=channel_layouts=3.0 -c:a libopus -b:a 32k "$c/audio_decode/jfk_3ch.webm"
  # Opus in MP4 without an edit list (the dOps box's big-endian pre-skip).
  "$ff" -y -loglevel error -t 1 -i "$data/jfk.flac" -c:a libopus -b:a 16k -use_editlist 0 "$c/audio_decode/jfk_opus.mp4"
  # Written to a pipe: RIFF and data sizes left at 0xFFFFFFFF.
  "$ff" -y -loglevel error -t 4 -i "$data/jfk.flac" -ac 1 -f wav - > "$c/audio_decode/jfk_pipe.wav"
fi

# Multipart: the boundary on the first line, then a body as OpenAI's clients send it.
b="----stt-fuzz"
audio=$(head -c 2048 "$data/jfk.flac" | base64 -w0)
{
  printf '%s\n' "$b"
  printf -- '--%s\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n' "$b"
  printf -- '--%s\r\nContent-Disposition: form-data; name="response_format"\r\n\r\nverbose_json\r\n' "$b"
  printf -- '--%s\r\nContent-Disposition: form-data; name="timestamp_granularities[]"\r\n\r\nsegment\r\n' "$b"
  printf -- '--%s\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n<|endoftext|> hello\r\n' "$b"
  printf -- '--%s\r\nContent-Disposition: form-data; name="file"; filename="a.flac"\r\nContent-Type: audio/flac\r\n\r\n' "$b"
  echo "$audio" | base64 -d
  printf '\r\n--%s--\r\n' "$b"
} > $c/multipart_form/openai.txt
printf '%s\n--%s\r\nContent-Disposition: form-data; name="temperature"\r\n\r\n0.4\r\n--%s--\r\n' "$b" "$b" "$b" > $c/multipart_form/temperature.txt

printf 'language=en&response_format=verbose_json' > $c/query_params/a.txt
printf 'language=&response_format=verbose%%5Fjson&prompt=a+b%%20c&temperature=0.2' > $c/query_params/b.txt
printf 'timestamp_granularities[]=word&model=whisper-1' > $c/query_params/c.txt

cp spin.toml $c/spin_manifest/spin.toml
cp k8s/overlays/dev/*.yaml $c/spin_manifest/ 2>/dev/null || true

# The head of a real model.bin (header, names, shapes, the first tensors' bytes).
python3 - "$wheels" "$c/ct2_model_bin" <<'PY'
import glob, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
for w in sorted(glob.glob(os.path.join(wheels, "*.whl"))):
    with zipfile.ZipFile(w) as z:
        for n in z.namelist():
            if n.endswith("model.bin"):
                with z.open(n) as f:
                    head = f.read(256 * 1024)
                with open(os.path.join(out, os.path.basename(w) + ".head"), "wb") as g:
                    g.write(head)
                break
PY
ls $c/* | wc -l
