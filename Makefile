# memgen: the executable companion book. `make book` and `make test` work straight after a clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Python writes no .pyc files where PYTHONDONTWRITEBYTECODE is set (as on the build machines),
# and then compiles torch's source anew in every kernel and test process (import torch: 6.7 s
# instead of 2.2 s on the slower build VM). Unset for what make starts, modules are compiled once,
# on first import (pip installs with --no-compile; the .pyc files go to .venv and the git-ignored
# __pycache__ folders).
unexport PYTHONDONTWRITEBYTECODE
# static builds: no kernel behind the page, text progress bars (hidden from the book)
BUILD_ENV := MEMGEN_STATIC=1 MEMGEN_PROGRESS=text
PROFILE ?= book
# chapters executed side by side before the book build (cores shared; see memgen/book/prefill.py).
# 1: the build executes them one after the other (as fast on 2 cores); try JOBS=4 on 8 cores or more
JOBS ?= 1
NB ?= book/05_frequency_filtration.ipynb
PARAMS ?=
LAB_ARGS ?=
TEST_BOOK := _build/test-book

.PHONY: lab install book generate chapter mnist test test-unit test-book test-nb test-pages lint bench clean clean-all strip

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml _ext/ipython_kernel_config.py
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (memgen)" >/dev/null
	mkdir -p $(VENV)/etc/ipython && cp _ext/ipython_kernel_config.py $(VENV)/etc/ipython/
	touch $@

## The book: variants from book/variants.yml, (with JOBS > 1) the chapters executed JOBS at a
## time into the execution cache, then a cached, warning-free build. The default
## profile builds in place (_build/html); another profile builds a staged copy whose chapters all
## run under it, e.g. `make book PROFILE=paper` (on a GPU) → _build/book-paper/_build/html.
book: install
ifeq ($(PROFILE),book)
	$(PY) -m memgen.book.bookgen generate --profile book
	if [ "$(JOBS)" != 1 ]; then $(BUILD_ENV) $(PY) -m memgen.book.prefill --jobs $(JOBS); fi
	$(BUILD_ENV) jupyter-book build -W -n --keep-going --all .
	@echo "open _build/html/index.html"
else
	$(PY) -m memgen.book.bookgen stage --profile $(PROFILE) --out _build/book-$(PROFILE)
	cd _build/book-$(PROFILE) && $(BUILD_ENV) jupyter-book build -W -n --keep-going --all .
	@echo "open _build/book-$(PROFILE)/_build/html/index.html"
endif

generate: install
	$(PY) -m memgen.book.bookgen generate --profile $(PROFILE)

## Re-execute one chapter with new parameters into out/:
##   make chapter NB=book/05_frequency_filtration.ipynb PARAMS="-p noise 0.6 -p width 257"
chapter: install
	$(PY) -m memgen.book.bookgen chapter $(NB) --out out $(PARAMS)

## MNIST's four IDX files, checksummed, into data/mnist (for chapter 10 at the paper's scale:
## `make chapter NB=book/10_noise_first_images.ipynb PARAMS="-p data mnist"`)
mnist: install
	$(PY) -m memgen fetch-mnist --dest data/mnist

## Live use: JupyterLab on the chapters with the project's kernel (sliders retrain or load runs).
## JupyterLab is installed into the venv on first use (it is not needed to build or test the book).
lab: install
	$(PY) -m pip install -q jupyterlab==4.6.6
	$(VENV)/bin/jupyter lab --notebook-dir=book $(LAB_ARGS)

## Every test layer: lint, the test-profile book (papermill) + browser check, unit tests, nbval.
test: install
	$(MAKE) lint
	$(MAKE) test-book
	$(PY) -m pytest -q tests
	$(MAKE) test-nb

test-unit: install
	$(PY) -m pytest -q tests --ignore=tests/test_pages.py

## Execute every chapter under the test profile with papermill, then render them (no re-execution).
test-book: install
	rm -rf _build/test-runs
	MEMGEN_STORE=$(CURDIR)/_build/test-runs $(BUILD_ENV) $(PY) -m memgen.book.bookgen stage --profile test --out $(TEST_BOOK) --execute
	cd $(TEST_BOOK) && MEMGEN_STORE=$(CURDIR)/_build/test-runs $(BUILD_ENV) jupyter-book build -W -n --keep-going --all .

## nbval: re-execute the papermill-executed test chapters in a fresh store and compare the
## NBVAL_CHECK_OUTPUT cells (same seeds must give the same numbers).
test-nb: install
	rm -rf _build/nbval-runs
	MEMGEN_STORE=$(CURDIR)/_build/nbval-runs $(BUILD_ENV) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
	  --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600 \
	  $(TEST_BOOK)/book/*.ipynb $(TEST_BOOK)/book/generated/*.ipynb

test-pages: install
	$(PY) -m pytest -q tests/test_pages.py

lint: install
	$(PY) -m ruff check memgen tests benchmarks _ext

bench: install
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_large.py

## Strip outputs from source chapters before committing.
strip: install
	nbstripout --keep-id book/*.ipynb book/generated/*.ipynb

clean:
	rm -rf _build/html _build/jupyter_execute _build/test-book _build/nbval-runs _build/test-runs out

clean-all: clean
	rm -rf _build runs data $(VENV)
