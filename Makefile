# vigil developer and CI entry points. `make test` works on a fresh clone: it creates the
# virtualenv and resolves the local Kafka jars first (needs python3, java and maven).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Reinstall when the dependencies change; otherwise `make venv` is a no-op.
STAMP  := $(VENV)/.vigil-installed

.PHONY: venv jars test lint demo bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Jars for the local broker (deploy/local/pom.xml) into ~/.cache/vigil or $$VIGIL_CACHE_DIR;
# skipped when already complete.
jars: venv
	$(PY) -m streams.dev.local_broker --resolve-only

# The whole suite: tests/ plus the detectors/ doctests (testpaths in pyproject.toml). Kafka
# tests use KAFKA_BOOTSTRAP_SERVERS if set, else start the local jar broker.
test: venv jars
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: venv jars
	$(VENV)/bin/vigil demo

bench: venv
	@set -e; for f in benchmarks/*.py; do \
		[ -e "$$f" ] || continue; \
		echo "== $$f --quick"; \
		$(PY) "$$f" --quick; \
	done
