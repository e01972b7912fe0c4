# Two commands: `make demo` runs the whole pipeline on the embedded default, `make test` the test suite.
# Both create or reuse .venv and install everything first.
PY := .venv/bin/python
CONFIG ?= configs/tiny-cpu.yaml

.PHONY: setup demo test lint bench clean

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
	$(PY) -m ultramedical.cli bench

clean:
	rm -rf runs artifacts .pytest_cache
