# Two commands on a fresh machine (Python 3.11 + make): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: install  ## generate a bank's day with violations, run the monitor on the embedded default, score it
	$(BIN)/lifemon demo

test: install  ## the whole suite: unit, Tansu + chDB integration, end to end
	$(BIN)/python -m pytest -q

lint: install  ## ruff (style, imports, bugbear) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas policy detectors streams

bench: install  ## end-to-end throughput against the raw librdkafka consume ceiling
	$(BIN)/python benchmarks/e2e_throughput.py

clean:
	rm -rf $(VENV) .lifemon .pytest_cache .ruff_cache
