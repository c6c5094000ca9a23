# Two commands for a newcomer:  `make report`  and  `make test`.
# Both create the virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JOURNEY := $(VENV)/bin/journey
STAMP := $(VENV)/.installed-stamp
WORKERS ?= 2
LRS_VENV ?= .venv-lrs
LRS_STAMP := $(LRS_VENV)/.installed-stamp

.PHONY: install lrs-venv report test test-fast fuzz lab bench bench-ingest bench-loading sample report-oulad system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,spark,bench]'
	touch $(STAMP)

install: $(STAMP)

## A Ralph LRS for the `journey ingest --lrs` tests, in its own virtual environment (extra lrs-server)
$(LRS_STAMP): pyproject.toml $(STAMP)
	test -x $(LRS_VENV)/bin/python || $(PYTHON) -m venv $(LRS_VENV)
	$(LRS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PY) scripts/extra_requirements.py lrs-server > $(LRS_VENV)/requirements.txt
	$(LRS_VENV)/bin/python -m pip install --quiet -r $(LRS_VENV)/requirements.txt
	touch $(LRS_STAMP)

lrs-venv: $(LRS_STAMP)

## Build every report from the bundled sample workspace into reports/
report: $(STAMP)
	$(JOURNEY) report data/sample --out reports

## The whole test suite (unit, property, notebook, engine parity, browser)
test: $(STAMP) $(LRS_STAMP) system-deps
	RALPH_BIN=$(abspath $(LRS_VENV))/bin/ralph $(PY) -m pytest -n $(WORKERS) --dist loadgroup

## Unit tests only (no browser, no Spark)
test-fast: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -m "not browser and not spark and not slow and not lrs"

## The fuzz suite, long profile (1,000 examples per generator)
fuzz: $(STAMP)
	JOURNEY_FUZZ=long $(PY) -m pytest -n $(WORKERS) tests/fuzz

## System packages the tests use: headless Chromium (browser tests) and Java (Spark)
system-deps:
	bash scripts/system-deps.sh

## JupyterLab on the notebooks
lab: $(STAMP)
	$(PY) -m pip install --quiet -e '.[lab]'
	$(VENV)/bin/jupyter lab notebooks

## Regenerate the committed sample workspace (deterministic)
sample: $(STAMP)
	$(JOURNEY) sample data/sample --learners 3000 --seed 7

## Performance benchmarks (writes benchmarks/RESULTS.md)
bench: $(STAMP)
	$(PY) benchmarks/run.py

## Ingest memory benchmark: 100k vs 1M xAPI statements (prints a table; results in benchmarks/INGEST.md)
bench-ingest: $(STAMP)
	$(PY) benchmarks/ingest_memory.py

## Workspace loading: 1M events against the previous loader, memory on a 2 GB events file (benchmarks/LOADING.md)
bench-loading: $(STAMP)
	$(PY) benchmarks/loading.py

## Reports on the real OULAD data set in ../shared/data/oulad
report-oulad: $(STAMP)
	$(JOURNEY) oulad $(OULAD_DIR) --into build/oulad
	$(JOURNEY) report build/oulad --out reports/oulad --period 2014 \
		--segments gender,region,highest_education,imd_band,age_band,disability,code_module

OULAD_DIR ?= ../shared/data/oulad

clean:
	rm -rf reports/* build .pytest_cache
