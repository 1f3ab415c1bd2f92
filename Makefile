# The two commands of the README:
#   make notebooks   run every notebook headless (papermill) into build/, figures included
#   make test        unit tests + every notebook on the smoke profile + nbval + emulated Colab,
#                    for both editions: notebooks/ (solutions) and student/ (exercises), and
#                    nbgrader's round trip on three notebooks; on 2 workers (pytest-xdist)
#   make grade       nbgrader's round trip on every notebook with exercises (CI runs it too)
#   make student     regenerate the student edition, student/, from course_utils and notebooks/
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
# pytest on WORKERS processes (pytest-xdist; 0: in this process). conftest.py keeps each notebook's
# nbval cells on one worker and hands out the longest items first.
WORKERS  ?= 2
XDIST    := -n $(WORKERS) $(if $(filter 0,$(WORKERS)),,--no-loadscope-reorder)

.PHONY: setup notebooks publish test grade unit colab student repo-url bench clean

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

# notebooks/ runs under nbval (its stored outputs); student/ has none, so tests/test_student_edition.py
# runs it with papermill and checks that it is exactly what `make student` writes. The emulated
# Colab (`make colab`) runs in the same session, on one worker while the other runs the rest.
test: setup
	COURSE_COLAB_EMULATION=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -q $(XDIST)

# nbgrader's round trip (tests/test_nbgrader.py) on every notebook with exercises: `make test`
# does three of them (a Part A function, Part B modules, a loss and a sampler).
# GRADE=rest: only the notebooks `make test` leaves out; GRADE=01,04: these. (.ci/run runs
# `make test` with COURSE_GRADE=all, which grades them all within the one command.)
GRADE    ?= all
grade: setup
	COURSE_GRADE=$(GRADE) $(PY) -m pytest tests/test_nbgrader.py -q $(XDIST)

# A fresh Colab, emulated (minutes): a new venv with only Colab's torch and the notebook's own
# install line, then the DeepFloyd path on tiny hub-shaped weights and a Part A notebook.
colab: setup
	COURSE_COLAB_EMULATION=1 $(PY) -m pytest tests/test_emulated_colab.py -q

# The student edition (never edited by hand): the exercise cells of notebooks/ regenerated from their
# references in course_utils, then student/ written from them with each solution body stubbed.
student: setup
	$(PY) tools/exercises.py sync
	$(PY) tools/exercises.py student

# Point every notebook's Colab badge and install line at a fork: make repo-url URL=https://github.com/ME/FORK
repo-url:
	$(PYTHON) tools/repo_url.py $(URL)

unit: setup
	$(PY) -m pytest tests -q -k "not notebook"

bench: setup
	$(PY) benchmarks/bench_training.py

clean:
	rm -rf $(BUILD) .pytest_cache
