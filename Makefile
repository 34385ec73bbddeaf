# The two commands in README.md: `make demo` (main job on embedded defaults) and `make test` (whole suite).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint redis-server

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch pinned in the same command: unpinned, pip would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

redis-server:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

demo: setup
	$(BIN)/api-assistant demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy core bot

test: setup redis-server lint
	$(BIN)/pytest -q
