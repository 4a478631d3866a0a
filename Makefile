# Two commands from a fresh clone: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo demo-fast test test-latest lock kernel-check bench fuzz lint clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/ridethrough demo

demo-fast: setup
	$(BIN)/ridethrough demo --fast

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The SDK-facing suites against the newest anthropic / openai (a second venv, .venv-latest).
test-latest:
	bash scripts/test-latest.sh $(ARGS)

# Re-resolve requirements/lock.txt and requirements/llama.txt (uv, pinned in the lock).
lock: setup
	bash scripts/lock.sh

# The local-model suites on llama.cpp built for another kernel path (AVX2, no AVX-512/AMX).
kernel-check:
	bash scripts/kernel-check.sh $(ARGS)

bench: setup
	bash bench/run.sh

# 100,000 seeded bad requests against a live gateway on loopback (bench/fuzz.py; ARGS="--examples
# 20000 --seed 7"). Prints the status counts; fails on any 5xx, dropped connection or blamed target.
fuzz: setup
	$(BIN)/python bench/fuzz.py $(ARGS)

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .venv-latest .venv-kernels .pytest_cache
