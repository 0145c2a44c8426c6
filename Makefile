# Two commands on a fresh machine (Python 3.11 with its headers and venv, a C compiler, make; Debian:
# gcc, python3-dev, python3-venv): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install test-deps demo test test-all faults lint bench bench-faust clean wheel-check

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard streams/*.c detectors/*.c)  # the C extensions pyproject declares
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Debian programs the suite runs as real processes (tests/receivers.py: Alertmanager; tests/test_metrics.py:
# Prometheus; tests/browser.py: headless Chromium, with a Chinese font for the report; tests/realservers.py:
# PostgreSQL with pgaudit, MariaDB with server_audit and sshd's internal-sftp, whose own logs the raw-log
# sources are tested on). Installed when missing and apt-get can (root); otherwise, or if an install
# fails, their tests are skipped with the reason.
DEBIAN_TEST_PACKAGES = prometheus-alertmanager prometheus chromium fonts-noto-cjk \
	postgresql-15 postgresql-15-pgaudit mariadb-server openssh-server openssh-client

# mitmproxy, the capture tool the HAR tests run (tests/test_har_capture_e2e.py), in a venv of its own:
# its pins are not lifemon's. When it cannot be installed, those tests are skipped with the reason.
MITMPROXY = mitmproxy==11.0.2
MITM_VENV = .lifemon/tools/mitmproxy

test-deps:  ## install the Debian programs and the capture tool the real-process tests run, when missing
	@test -x $(MITM_VENV)/bin/mitmdump || { $(PYTHON) -m venv $(MITM_VENV) && \
	  $(MITM_VENV)/bin/pip install -q '$(MITMPROXY)'; } || \
	  { rm -rf $(MITM_VENV); echo "not installed: $(MITMPROXY); the HAR capture tests will be skipped"; }
	@missing=""; for p in $(DEBIAN_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; } || \
	  echo "apt-get could not install all of:$$missing; the tests of what is missing will be skipped"; \
	else echo "not installed:$$missing (needs root and apt-get); their tests will be skipped"; fi

demo: install  ## generate a bank's day with violations, run the monitor on the embedded default, score it
	$(BIN)/lifemon demo

# TEST_WORKERS: three pytest workers a core, because the end-to-end tests mostly wait (a session
# timeout, an idle rule, a fault's duration): on 2 cores the suite took 690 s with 2 workers, 371 s
# with 4 and 308 s with 6, using about one core's CPU throughout (docs/faults.md#cost). The fault
# matrix alone (`make faults`) keeps one a core: its cases time outages against session timeouts.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) * 3 )))

# the slowest tests named at the end of each run: the suite must stay under 15 minutes on 2 cores
test: install test-deps  ## the suite: unit, Tansu + chDB integration, end to end, one fault case of each kind
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow" --durations=15

test-all: install test-deps  ## the suite and the slow fault cases (docs/faults.md)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

faults: install test-deps  ## the fault matrix alone, then its table of lost and duplicate records
	rm -rf build/faults
	$(BIN)/python -m pytest -q -n 2 tests/test_fault_matrix.py tests/test_broker_faults.py
	$(BIN)/python tests/fault_table.py

lint: install  ## ruff (style, imports, bugbear) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas policy detectors streams

bench: install  ## end-to-end throughput against the raw librdkafka consume ceiling
	$(BIN)/python benchmarks/e2e_throughput.py

bench-faust: install  ## the faust-streaming runtime beside the native one and the raw consume rates
	$(BIN)/python benchmarks/faust_throughput.py

clean:
	rm -rf $(VENV) .lifemon .pytest_cache .ruff_cache

wheel-check: install  ## a plain wheel install (no repo beside it) still carries its policy, schemas and DDL
	rm -rf build/wheel-check
	$(BIN)/pip wheel -q --no-deps -w build/wheel-check .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/pip install -q build/wheel-check/lifemon-*.whl
	n=$$($(BIN)/python -c 'from detectors import REGISTRY; print(len(REGISTRY))'); \
	  cd /tmp && $(CURDIR)/build/wheel-check/venv/bin/lifemon policy check | grep "$$n detector(s)" > /dev/null
	cd /tmp && $(CURDIR)/build/wheel-check/venv/bin/python -c \
	  "from streams import _avro, _door, _ids; from detectors import _window; from streams.clickhouse import ddl_statements; from streams.codecs import load_schema; \
	   assert len(ddl_statements('x')) >= 5 and load_schema('access')['name'] == 'AccessEvent'"
	@echo "wheel-check: OK"
