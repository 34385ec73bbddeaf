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

# The tests start their own redis-server: REDIS_SERVER or one on PATH is used as it is (no root needed);
# only when there is none is it installed, which needs root.
redis-server:
	@if [ -n "$${REDIS_SERVER:-}" ] || command -v redis-server >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "redis-server not found: install it (sudo apt-get install redis-server) or set REDIS_SERVER to its path" >&2; \
		exit 1; \
	fi; \
	apt-get update -qq && apt-get install -y -qq redis-server

demo: setup
	$(BIN)/api-assistant demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy core bot

test: setup redis-server lint
	$(BIN)/pytest -q
