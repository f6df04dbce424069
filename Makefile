# ticklane: the two commands of the quick start, and a few more.
#   make demo   create .venv, install ticklane, run the daemon on the embedded default
#               (simulated gateware, the built-in ITCH stream, the paper venue)
#   make test   create .venv if needed, install the dev dependencies, run the whole suite
#   make bench  benchmarks (not part of make test)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ticklane run --bbo-csv out/demo-bbo.csv

test: $(STAMP)
	$(BIN)/python -m tools.warm_toolchain
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m tools.bench

clean:
	rm -rf $(VENV) .cache out
