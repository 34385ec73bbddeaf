# The two commands in README.md: `make demo` (main job on embedded defaults) and `make test` (whole suite).
# Everything installs from the hash-pinned lock files, so what CI tests is what the image ships.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# pip-tools and pip-audit live in their own venv: they are tools, not dependencies of the app.
TOOLS ?= .venv-tools
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
# `make lock LOCK_ARGS=--upgrade` moves every unpinned dependency to its newest release.
LOCK_ARGS ?=
PIP_COMPILE := $(TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

IMAGE ?= api-assistant:latest
# The local base (mmdebstrap + docker import, built when missing) since no registry is reachable here;
# elsewhere `make image BASE_IMAGE=python:3.11-slim`, or plain `docker build .`.
BASE_IMAGE ?= localhost/bookworm-python

.PHONY: setup demo test lint redis-server postgres promtool graphviz snippet-toolchains lock audit docker image container-test

# The dev lock is the runtime lock plus the dev tools, at the same versions and hashes. setuptools comes
# from the lock too (no build isolation), so nothing unpinned is downloaded.
$(BIN)/.installed: $(DEV_LOCK) pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check || { echo "$(DEV_LOCK) lacks what pyproject.toml asks for: run make lock"; exit 1; }
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

# The tests start their own throwaway PostgreSQL cluster (tests/postgres_server.py) from the binaries of Debian's
# package, /usr/lib/postgresql/<version>/bin (or POSTGRES_BIN_DIR, or initdb on PATH); no server needs to run.
# Only when there are none is the package installed, as root. The cluster the package creates is stopped and set
# to manual start (start.conf; pg_ctlcluster works with or without systemd): nothing uses it.
postgres:
	@if [ -n "$${POSTGRES_BIN_DIR:-}" ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
		|| command -v initdb >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "PostgreSQL not found: install it (sudo apt-get install postgresql) or set POSTGRES_BIN_DIR to the folder" \
			"holding initdb and postgres; its tests are skipped meanwhile" >&2; \
		exit 0; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	(apt-get install -y -qq postgresql >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)) || exit 1; \
	pg_lsclusters --no-header | while read -r version cluster _; do \
		pg_ctlcluster "$$version" "$$cluster" stop >/dev/null 2>&1 || true; \
		echo manual > "/etc/postgresql/$$version/$$cluster/start.conf"; \
	done

# Diagrams are rendered by Graphviz's `dot` (Debian's graphviz package, with a font for the labels); installed when
# missing, as root, like redis-server. Without it the diagram tests fail, so a machine without root is told how.
graphviz:
	@if command -v dot >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "Graphviz not found: install it (sudo apt-get install graphviz fonts-dejavu-core)" >&2; \
		exit 1; \
	fi; \
	(apt-get install -y -qq --no-install-recommends graphviz fonts-dejavu-core >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq --no-install-recommends graphviz fonts-dejavu-core >/dev/null))

# The snippet tests build and run the snippets in every language they are written in, with Debian's toolchains
# (Go, Ruby, PHP and its curl extension, a JDK, and Mono's C# compiler: Debian has no .NET SDK package), installed
# when missing, as root; and TypeScript's compiler from the npm registry, pinned by tests/snippet_tools'
# package-lock.json. Without a toolchain its language's snippet tests are skipped, with one line saying which.
SNIPPET_PACKAGES = $(if $(shell command -v go),,golang-go) $(if $(shell command -v ruby),,ruby) \
	$(if $(shell command -v php),,php-cli) \
	$(if $(shell php -r "echo function_exists('curl_init') ? 'yes' : '';" 2>/dev/null),,php-curl) \
	$(if $(shell command -v javac),,default-jdk-headless) \
	$(if $(wildcard /usr/lib/mono/4.5/System.Net.Http.dll),$(if $(shell command -v mcs),,mono-mcs),mono-mcs libmono-system-net-http4.0-cil)
snippet-toolchains:
	@missing="$(strip $(SNIPPET_PACKAGES))"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" != 0 ]; then \
		echo "snippet toolchains not found: install them (sudo apt-get install $$missing); their tests are skipped" \
			"meanwhile" >&2; \
	elif [ -n "$$missing" ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		(apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
			|| (apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null)) || exit 1; \
	fi; \
	if [ ! -x tests/snippet_tools/node_modules/.bin/tsc ]; then \
		if command -v npm >/dev/null; then \
			npm ci --prefix tests/snippet_tools --no-audit --no-fund --silent || exit 1; \
		else \
			echo "npm not found: TypeScript snippets are not type-checked; their tests are skipped meanwhile" >&2; \
		fi; \
	fi

# The alert rules' tests run promtool (Debian's prometheus package ships it); installed when missing, as root.
promtool:
	@if command -v promtool >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "promtool not found: install it (sudo apt-get install prometheus); its tests are skipped meanwhile" >&2; \
		exit 0; \
	fi; \
	(apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null)) \
		&& { systemctl disable --now prometheus >/dev/null 2>&1 || true; }

demo: setup
	$(BIN)/api-assistant demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy core bot evaluation

test: setup redis-server postgres promtool graphviz snippet-toolchains lint
	$(BIN)/pytest -q

$(TOOLS)/bin/pip-compile:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet pip-tools==7.6.2 pip-audit==2.10.1

# Regenerate both lock files from pyproject.toml (existing pins are kept unless LOCK_ARGS=--upgrade).
# torch must resolve to the CPU wheel: here pip's configuration finds it on disk; elsewhere run
# `PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make lock`.
lock: $(TOOLS)/bin/pip-compile
	$(PIP_COMPILE) --output-file $(LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev --constraint $(LOCK) --output-file $(DEV_LOCK) pyproject.toml
	@grep -q '^torch==.*+cpu ' $(LOCK) || { echo "torch did not resolve to a CPU build; see the comment above 'lock:'"; exit 1; }

# Known vulnerabilities in the locked dependencies. Needs a vulnerability database (PyPI's JSON API or
# OSV), which these machines cannot reach, so it is not part of .ci/run.
audit: $(TOOLS)/bin/pip-compile
	$(TOOLS)/bin/pip-audit --strict --require-hashes --disable-pip -r $(DEV_LOCK)

# Docker targets: root starts Debian's dockerd when none answers (deploy/docker/dockerd.sh).
docker:
	@deploy/docker/dockerd.sh >/dev/null

image: docker
	BASE_IMAGE=$(BASE_IMAGE) deploy/docker/build-image.sh $(IMAGE)

container-test: image
	deploy/docker/container-test.sh $(IMAGE)
