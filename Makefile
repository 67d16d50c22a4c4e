# Two entry points for a fresh machine: `make run` (the app) and `make test` (the whole suite).
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml or
# constraints.txt change.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: run test lint format system-deps demo-model lock

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

# Re-pin the tested versions after changing dependencies.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^tingxie' > constraints.txt
