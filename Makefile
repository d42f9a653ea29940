# libscylla_shard: the user's entry points.
#   make demo   build, start an emulated cluster, run the example, print routing counters
#   make test   install test dependencies, then lint and run every test
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PYTHON := $(VENV)/bin/python
RELEASE_DIR := target/release
EMULATOR := $(RELEASE_DIR)/scylla-emulator
SCYLLA_PEER := $(RELEASE_DIR)/scylla-peer

.PHONY: all build build-peer venv demo test lint rust-test conformance clean

all: build

build:
	$(CARGO) build --release -p scylla-shard -p scylla-emulator

build-peer:
	$(CARGO) build --release -p scylla-peer

# Python venv with the pinned real driver used by the conformance tests.
$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: build venv
	bash scripts/demo.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Integration tests start the release emulator.
rust-test: build
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) $(CARGO) test --workspace

conformance: build build-peer venv
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) SCYLLA_PEER=$(abspath $(SCYLLA_PEER)) \
		$(PYTHON) -m pytest -q tests/python

test: lint rust-test conformance

clean:
	$(CARGO) clean
	rm -rf $(VENV)
