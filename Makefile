# Two commands: `make demo` runs the whole pipeline on the embedded default, `make test` the test suite.
# Both create or reuse .venv and install everything first.
PY := .venv/bin/python
CONFIG ?= configs/tiny-cpu.yaml

.PHONY: setup demo test lint bench lock clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m jobs.demo --config $(CONFIG)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=20 tests  # two workers: start-up (imports) is single-threaded

lint: setup
	.venv/bin/ruff check .

bench: setup
	$(PY) -m pip install -q -e ".[bench]"  # TRL, the baseline: an extra the project itself never needs
	$(PY) -m jobs.cli bench

# Re-resolve locks/cpu.txt and locks/cuda.txt (what scripts/setup.sh installs); each lock's header holds the
# command. Existing pins are kept unless LOCK_ARGS=--upgrade (or --upgrade-package NAME). uv reads no pip
# configuration: UV_FIND_LINKS hands it pip's find-links, where this machine keeps the torch CPU wheel.
UV ?= .venv/bin/uv
LOCK_COMMON := --python-version 3.11 --python-platform x86_64-manylinux_2_28 $(LOCK_ARGS)
lock: setup
	UV_FIND_LINKS="$$(echo $${PIP_FIND_LINKS:-$$($(PY) -m pip config get global.find-links 2>/dev/null)} | tr ' ' ,)" \
	$(UV) pip compile -q pyproject.toml --extra cpu --extra dev $(LOCK_COMMON) \
	  --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec -o locks/cpu.txt
	$(UV) pip compile -q pyproject.toml --extra cuda --extra dev -c locks/cuda.in $(LOCK_COMMON) \
	  -o locks/cuda.txt

clean:
	rm -rf runs artifacts .pytest_cache
