# vigil developer and CI entry points. `make test` works on a fresh clone: it creates the
# virtualenv and resolves the local Kafka jars first (needs python3, java and maven).

# The interpreter .venv is made with: Debian's python3.11 where there is one, else python3
# (PYTHON=... chooses). Debian builds it as the worker's image builds its own (python:3.11-slim
# is configured --enable-optimizations --with-lto: profile-guided and link-time optimised),
# while a Python built by pyenv with its defaults, this machine's python3, is neither (and
# calls into a shared libpython): the same code and events took 7.4 % fewer instructions and
# ~10 % less time per event with Debian's (benchmarks/processor.py, issue 18), so the
# benchmarks measure the interpreter the worker runs in production.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) python3)
VENV   := .venv
PY     := $(VENV)/bin/python
# Exact versions (and hashes) of every runtime and dev dependency, resolved by `make lock`;
# the runtime-only lock is what the Docker image installs (same pins, no dev tools).
LOCK   := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock
# Reinstall when the dependencies or their pins change; otherwise `make venv` is a no-op.
STAMP  := $(VENV)/.vigil-installed

.PHONY: venv python-version lock lock-label-studio label-studio jars test lint demo bench profile profile-instructions profile-bytecodes

venv: $(STAMP)

# Which interpreter .venv is (or would be) made with, for CI's log.
python-version:
	@if [ -x $(PY) ]; then echo "$(PY): $$($(PY) --version) ($$(readlink -f $(PY)))"; \
	else echo "$(PYTHON): $$($(PYTHON) --version)"; fi

# The dependencies come from the lock alone (--require-hashes: a pin without its hash, or a
# file whose hash differs, fails the install); the project itself is then installed without
# resolving anything again.
# The Rust extension (detectors/native) is built by that install: its sources are inputs too.
NATIVE := detectors/native/Cargo.toml detectors/native/Cargo.lock $(wildcard detectors/native/src/*.rs)
$(STAMP): pyproject.toml $(LOCK) $(NATIVE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml (run after changing a dependency, then commit both).
# Pins already in the lock are kept where they still fit; `make lock LOCK_ARGS=--upgrade`
# moves every package to its newest allowed version. --universal: one lock for every
# platform and every Python >= 3.11; --fork-strategy fewest: one version of each package for
# all of them, so CI tests the versions everybody gets.
lock: venv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--universal --fork-strategy fewest --generate-hashes \
		--custom-compile-command 'make lock' --quiet $(LOCK_ARGS) -o $(LOCK)
	# The runtime lock takes its pins from the full one (-c), so the image runs what CI tests.
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 \
		--universal --fork-strategy fewest --generate-hashes -c $(LOCK) \
		--custom-compile-command 'make lock' --quiet -o $(RUNTIME_LOCK)

# Label Studio, for the review bridge's tests (streams/dev/label_studio.py finds it here):
# its own virtualenv, because it pins its own dependencies and some clash with vigil's.
# Pinned with hashes like the main lock; `make lock-label-studio` re-resolves it from
# requirements-label-studio.in. ~1 GB; not needed to run vigil itself. Installed by uv
# (from .venv's dev tools): measured on the 2-core CI machine, 21 s from an empty cache
# where pip took 4 min for the same ~160 pinned wheels.
LS_VENV  := .venv-label-studio
LS_LOCK  := requirements-label-studio.lock
LS_STAMP := $(LS_VENV)/.vigil-installed

label-studio: $(LS_STAMP)

# `uv pip sync`: exactly the lock, nothing else (--require-hashes as for .venv).
$(LS_STAMP): $(LS_LOCK) $(STAMP)
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(VENV)/bin/uv pip sync --quiet --python $(LS_VENV)/bin/python --require-hashes $(LS_LOCK)
	touch $(LS_STAMP)

# Same flags as `lock`, so one lock serves every platform and Python >= 3.11.
lock-label-studio: venv
	$(VENV)/bin/uv pip compile requirements-label-studio.in --python-version 3.11 \
		--universal --fork-strategy fewest --generate-hashes \
		--custom-compile-command 'make lock-label-studio' --quiet $(LOCK_ARGS) -o $(LS_LOCK)

# Jars for the local broker (deploy/local/pom.xml) into ~/.cache/vigil or $$VIGIL_CACHE_DIR;
# skipped when already complete.
jars: venv
	$(PY) -m streams.dev.local_broker --resolve-only

# The whole suite: tests/ plus the detectors/ doctests (testpaths in pyproject.toml). Kafka
# tests use KAFKA_BOOTSTRAP_SERVERS if set, else start the local jar broker.
test: venv jars label-studio
	$(PY) -m pytest

# Python: ruff and mypy; the Rust extension: rustfmt and clippy (rustup's default profile
# has both).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cargo fmt --manifest-path detectors/native/Cargo.toml --check
	cargo clippy --manifest-path detectors/native/Cargo.toml --release --locked -q -- -D warnings

# `make demo REVIEW=1`: also Label Studio and the review bridge (`vigil demo --review`).
demo: venv jars $(if $(REVIEW),label-studio)
	$(VENV)/bin/vigil demo$(if $(REVIEW), --review)

bench: venv jars label-studio
	@set -e; for f in benchmarks/*.py; do \
		[ -e "$$f" ] || continue; \
		echo "== $$f --quick"; \
		$(PY) "$$f" --quick; \
	done

# Where the time of Processor.inference_batch goes: py-spy samples `benchmarks/processor.py
# --only process` (the default processor in process, batches as the worker runs them, no
# Kafka; PROFILE_ARGS: its arguments) and
# writes the collapsed stacks to out/profile/processor.collapsed (git-ignored; open it in
# speedscope or flamegraph.pl), then the top functions by own and cumulative time of the
# measured passes (not set-up and warm-up) to out/profile/processor-top.txt. py-spy needs
# ptrace of its child: root, or kernel.yama.ptrace_scope <= 1.
# --nonblocking: py-spy reads the stacks without pausing the process (a pause per sample
# slowed it ~1.5x here); a torn stack now and then is the price.
PROFILE_DIR  := out/profile
PROFILE_ARGS ?= --events 100000 --repeats 3
profile: venv
	mkdir -p $(PROFILE_DIR)
	$(VENV)/bin/py-spy record --rate 100 --nonblocking --function --format raw \
		-o $(PROFILE_DIR)/processor.collapsed -- $(PY) benchmarks/processor.py --only process $(PROFILE_ARGS)
	$(PY) benchmarks/profile/top_functions.py $(PROFILE_DIR)/processor.collapsed --under timed \
		| tee $(PROFILE_DIR)/processor-top.txt

# What kind of work those instructions are: the instruction count of `processor.py --only
# instructions` (valgrind's callgrind, the caps full), its two counted runs kept, and their
# difference per event by C function and group (the bytecode loop, numpy, msgspec, dicts,
# the allocator, ...) to out/profile/instruction-shares.json. A few minutes.
COUNT_N1 := 1000
COUNT_N2 := 5000
profile-instructions: venv
	mkdir -p $(PROFILE_DIR)
	$(PY) benchmarks/processor.py --only instructions --instruction-events $(COUNT_N1) $(COUNT_N2) \
		--callgrind-out $(PROFILE_DIR)
	$(PY) benchmarks/profile/instruction_shares.py --events $(COUNT_N1) $(COUNT_N2) \
		$(PROFILE_DIR)/processor.$(COUNT_N1).callgrind $(PROFILE_DIR)/processor.$(COUNT_N2).callgrind \
		| tee $(PROFILE_DIR)/instruction-shares.json

# Which Python functions run those instructions' bytecodes: each function's bytecodes and
# calls per event, counted with sys.settrace over the instruction count's events (in
# process; ~10 s), to out/profile/bytecodes.json.
profile-bytecodes: venv
	mkdir -p $(PROFILE_DIR)
	$(PY) benchmarks/profile/bytecodes.py | tee $(PROFILE_DIR)/bytecodes.json
