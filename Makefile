# Two entry points for a fresh machine: `make run` (the app) and `make test` (the whole suite).
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml or
# constraints.txt change.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: run test format system-deps demo-model lock

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,onnx]'
	touch $(STAMP)

system-deps:
	@packaging/system-deps.sh

run: system-deps $(STAMP)
	$(VENV)/bin/tingxie

test: system-deps $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Rebuild resources/demo-model from scratch, seeded (see its README.md): synthesize the general
# training set with espeak-ng, create the random starting checkpoint, train it with
# `tingxie-cli tune` (three passes), copy the result in. ~1 h on 2 busy CPU cores.
# OMP_NUM_THREADS=1: OpenMP threads waiting on each other ran steps 5-10x slower on a busy
# 2-core machine.
DEMO := out/demo-model
demo-model: system-deps $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/tingxie-cli synth resources/corpus/general/train.txt $(DEMO)/general-train --copies 2 --seed 1
	$(PY) resources/demo-model/recipe/init_model.py $(DEMO)/init --seed 0
	OMP_NUM_THREADS=1 $(VENV)/bin/tingxie-cli tune resources/demo-model/recipe/train.yaml
	OMP_NUM_THREADS=1 $(VENV)/bin/tingxie-cli tune resources/demo-model/recipe/train-stage2.yaml
	OMP_NUM_THREADS=1 $(VENV)/bin/tingxie-cli tune resources/demo-model/recipe/train-stage3.yaml
	cp $(DEMO)/job3/model/*.json $(DEMO)/job3/model/model.safetensors resources/demo-model/

# Re-pin the tested versions after changing dependencies.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^tingxie' > constraints.txt
