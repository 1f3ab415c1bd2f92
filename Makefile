# The two commands of the README:
#   make notebooks   run every notebook headless (papermill) into build/, figures included
#   make test        unit tests + every notebook on the smoke profile + nbval
# Both create the virtual environment in $(VENV) when it is missing.

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PROFILE  ?= auto
BUILD    ?= build
DATA_ROOT ?=
SHELL    := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip repeats a harmless warning for every package of this machine's local index; drop it
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: setup notebooks publish test unit bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt $(QUIET_PIP)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . $(QUIET_PIP)
	touch $@

notebooks: setup
	$(PY) tools/run_notebooks.py --profile $(PROFILE) --build $(BUILD) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

# Re-run the notebooks and store their outputs in notebooks/ (what Colab and GitHub show).
publish: setup
	$(PY) tools/run_notebooks.py --profile $(PROFILE) --build $(BUILD) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) --publish

test: setup
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -q

unit: setup
	$(PY) -m pytest tests -q -k "not notebook"

bench: setup
	$(PY) benchmarks/bench_training.py

clean:
	rm -rf $(BUILD) .pytest_cache
