# Two commands from a fresh clone: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo demo-fast test bench lint clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/ridethrough demo

demo-fast: setup
	$(BIN)/ridethrough demo --fast

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

bench: setup
	bash bench/run.sh

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache
