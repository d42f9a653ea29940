# libscylla_shard: the user's entry points.
#   make demo   build, start an emulated cluster, run the example, print routing counters
#   make test   install test dependencies, then lint and run every test
#               (Rust, Python and Node.js drivers, C)
SHELL := /bin/bash
CARGO ?= cargo
# Reproducible builds: no path of the build machine in the binaries (the
# sources as /build, the crates as /cargo), so the same sources give the
# same library wherever they are built (`make repro-check`).
CARGO_HOME_DIR := $(or $(CARGO_HOME),$(HOME)/.cargo)
export RUSTFLAGS := --remap-path-prefix=$(CURDIR)=/build --remap-path-prefix=$(CARGO_HOME_DIR)=/cargo $(RUSTFLAGS)
export CFLAGS := -ffile-prefix-map=$(CURDIR)=/build -ffile-prefix-map=$(CARGO_HOME_DIR)=/cargo $(CFLAGS)
# C's __DATE__ and __TIME__ (in mimalloc) follow it: the last commit's time.
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
RELEASE_DIR := target/release
EMULATOR := $(RELEASE_DIR)/scylla-emulator
COMMUNICATOR := $(RELEASE_DIR)/scylla-communicator
SCYLLA_PEER := $(RELEASE_DIR)/scylla-peer
# The decoder fuzzer is a workspace of its own (it installs its own global
# allocator); its builds go under target/fuzz.
FUZZ_MANIFEST := fuzz/Cargo.toml
FUZZ_TARGET := target/fuzz

.PHONY: all build build-communicator build-peer venv demo test lint rust-test fuzz-test fuzz conformance node-conformance clean python-binding \
	header c-header-check abi-check c-symbols symbols lib static-lib uninstall c-lib c-examples c-test c-install-test c-check install \
	c-deps lua-deps lua-test openresty-test

all: build

build:
	$(CARGO) build --release -p scylla-shard -p scylla-emulator

build-communicator:
	$(CARGO) build --release -p scylla-communicator

build-peer:
	$(CARGO) build --release -p scylla-peer

# Python venv with the pinned real driver used by the conformance tests.
$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed

# The Python binding (bindings/python) installed into the venv as a wheel
# that bundles the library just built; reinstalled when either changes.
PY_BINDING := bindings/python
PY_BINDING_STAMP := $(VENV)/.sshard-python-installed
PY_BINDING_SOURCES := $(wildcard $(PY_BINDING)/scylla_shard/*.py) $(PY_BINDING)/setup.py \
	$(PY_BINDING)/build_ffi.py $(PY_BINDING)/pyproject.toml include/scylla_shard_cdef.h

PY_WHEEL_DIR := target/python-wheel

$(PY_BINDING_STAMP): $(VENV)/.installed $(PY_BINDING_SOURCES) $(RELEASE_DIR)/libscylla_shard.so
	rm -rf $(PY_WHEEL_DIR)
	SCYLLA_SHARD_BUNDLE_LIBRARY=$(abspath $(RELEASE_DIR)/libscylla_shard.so) \
		$(VENV)/bin/pip wheel --quiet --no-deps -w $(PY_WHEEL_DIR) $(PY_BINDING)
	$(VENV)/bin/pip install --quiet --force-reinstall --no-deps $(PY_WHEEL_DIR)/scylla_shard-*.whl
	rm -rf $(PY_BINDING)/build $(PY_BINDING)/*.egg-info
	touch $@

python-binding: build $(PY_BINDING_STAMP)

# The demo through the C API (examples/c/demo.c) on an emulated cluster.
demo: build c-examples
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) bash scripts/demo_c.sh $(C_BUILD)/examples/demo

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path $(FUZZ_MANIFEST) -- --check
	$(CARGO) clippy --manifest-path $(FUZZ_MANIFEST) --target-dir $(FUZZ_TARGET) --all-targets -- -D warnings

# Integration tests start the release emulator.
rust-test: build
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) $(CARGO) test --workspace

# tests/python: the real drivers against the emulator (and through the
# communicator), and this library's Python binding (test_sshard_*.py, with
# the wheel's bundled library).
conformance: build build-peer build-communicator venv python-binding
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) SCYLLA_PEER=$(abspath $(SCYLLA_PEER)) \
		SCYLLA_COMMUNICATOR=$(abspath $(COMMUNICATOR)) \
		SSHARD_PYTHON_WHEEL_DIR=$(abspath $(PY_WHEEL_DIR)) $(PYTHON) -m pytest -q tests/python
	$(PYTHON) -m pytest -q benches/tests

# The fuzzer's committed corpus replayed, every seed, and a short
# deterministic run (a few seconds): fuzz/tests/replay.rs.
fuzz-test:
	$(CARGO) test --manifest-path $(FUZZ_MANIFEST) --target-dir $(FUZZ_TARGET)

# The Node.js driver (cassandra-driver, pinned with its lock file) against
# the emulator and through the communicator, with node's own test runner.
# Node and npm come from the distribution when missing (the tests are
# skipped, saying so, only when they cannot be installed); the packages go
# to tests/node/node_modules (ignored by git).
NODE_DIR := tests/node
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-conformance: build build-communicator
	@command -v node >/dev/null && command -v npm >/dev/null || \
		{ echo "installing nodejs npm"; { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; } || true; }
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
		$(MAKE) --no-print-directory $(NODE_DIR)/node_modules/.installed && \
		cd $(NODE_DIR) && SCYLLA_EMULATOR=$(abspath $(EMULATOR)) SCYLLA_COMMUNICATOR=$(abspath $(COMMUNICATOR)) \
			node --test --test-concurrency=1 .; \
	else echo "SKIPPED the Node.js tests: node and npm could not be installed"; fi

test: lint rust-test fuzz-test conformance node-conformance c-check packaging-check lua-test

clean:
	$(CARGO) clean
	rm -rf $(VENV)

# ---------------------------------------------------------------------------
# C ABI: header, symbol check, C tests, examples, install.
#   make header           regenerate include/scylla_shard.h (pinned cbindgen)
#   make c-check          header freshness + standalone compiles, exported
#                         symbols, C tests (also under valgrind), install + pkg-config
#   make install PREFIX=  .so with soname + symlinks, .a, header, scylla_shard.pc
CBINDGEN_VERSION := 0.29.4
TOOLS_DIR := target/tools
CBINDGEN := $(TOOLS_DIR)/bin/cbindgen
CBINDGEN_STAMP := $(TOOLS_DIR)/.cbindgen-$(CBINDGEN_VERSION)
HEADER := include/scylla_shard.h
CDEF := include/scylla_shard_cdef.h
CC ?= cc
CXX ?= c++
C_WARN := -Wall -Wextra -Werror -pedantic
C_BUILD := target/c
C_LIB_DIR := $(C_BUILD)/lib
LIB_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The soname is build.rs's rule (the one place it lives), read back from
# the built library when a recipe needs it.
LIB_SONAME = $(shell scripts/soname.sh $(RELEASE_DIR)/libscylla_shard.so)
STATIC_LIB := $(C_BUILD)/static/libscylla_shard.a
SYMBOLS = debian/libscylla-shard$(patsubst libscylla_shard.so.%,%,$(LIB_SONAME)).symbols
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
C_TESTS := test_api test_cluster test_sessions test_fork test_ssl test_retry test_speculation test_communicator test_driven_threads test_host_policies
C_EXAMPLES := basic async_queue callback demo

$(CBINDGEN_STAMP):
	$(CARGO) install cbindgen --version =$(CBINDGEN_VERSION) --locked --root $(TOOLS_DIR)
	touch $@

# The header, and from it the declarations without preprocessor lines that
# LuaJIT's ffi.cdef and cffi read.
header: $(CBINDGEN_STAMP)
	$(CBINDGEN) -q --config cbindgen.toml --output $(HEADER) src/ffi/mod.rs
	python3 scripts/gen_cdef.py $(HEADER) $(CDEF)

# Fails when the committed header (or the generated bind.rs) is stale, then
# compiles the header alone as C99, C11 and C++17 (twice in one C++ program).
c-header-check: $(CBINDGEN_STAMP)
	@mkdir -p $(C_BUILD)
	$(CBINDGEN) -q --config cbindgen.toml --output $(C_BUILD)/scylla_shard.h src/ffi/mod.rs
	@diff -u $(HEADER) $(C_BUILD)/scylla_shard.h || { echo "$(HEADER) is stale: run make header"; exit 1; }
	python3 scripts/gen_cdef.py $(HEADER) $(C_BUILD)/scylla_shard_cdef.h
	@diff -u $(CDEF) $(C_BUILD)/scylla_shard_cdef.h || { echo "$(CDEF) is stale: run make header"; exit 1; }
	python3 scripts/gen_ffi_bind.py --check
	for std in c99 c11; do $(CC) -std=$$std $(C_WARN) -Iinclude -x c -fsyntax-only $(HEADER) || exit 1; done
	printf '#include "scylla_shard.h"\n#include "scylla_shard.h"\nint main(void){return sshard_abi_version()==SSHARD_ABI_VERSION?0:1;}\n' > $(C_BUILD)/header_c11.c
	$(CC) -std=c11 $(C_WARN) -Iinclude -c $(C_BUILD)/header_c11.c -o $(C_BUILD)/header_c11.o
	printf '#include "scylla_shard.h"\nint other(void){return (int)sizeof(sshard_metrics);}\n' > $(C_BUILD)/header_a.cc
	printf '#include "scylla_shard.h"\n#include "scylla_shard.h"\nint other(void);\nint main(){return other()>0?0:1;}\n' > $(C_BUILD)/header_b.cc
	$(CXX) -std=c++17 $(C_WARN) -Iinclude $(C_BUILD)/header_a.cc $(C_BUILD)/header_b.cc -o $(C_BUILD)/header_cxx
	./$(C_BUILD)/header_cxx
	@echo "header ok"

# The library alone (what `make install` installs).
lib:
	$(CARGO) build --release -p scylla-shard

# The shared library, staged with its soname symlinks for the C programs.
c-lib: build
	@mkdir -p $(C_LIB_DIR)
	cp --remove-destination $(RELEASE_DIR)/libscylla_shard.so $(C_LIB_DIR)/libscylla_shard.so.$(LIB_VERSION)
	ln -sf libscylla_shard.so.$(LIB_VERSION) $(C_LIB_DIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(C_LIB_DIR)/libscylla_shard.so

# The installable static library: only sshard_ symbols global.
static-lib: lib
	@mkdir -p $(dir $(STATIC_LIB))
	bash scripts/static_lib.sh $(RELEASE_DIR)/libscylla_shard.a $(STATIC_LIB)

# Exactly the sshard_ symbols are exported, by the .so and the .a, and they
# are the committed list (docs/ABI.md: a symbol is added with the version it
# came in, never removed or changed without a new soname).
c-symbols: c-lib static-lib
	@bad=$$(nm -D --defined-only $(RELEASE_DIR)/libscylla_shard.so | awk '{print $$3}' | grep -v '^sshard_' || true); \
	if [ -n "$$bad" ]; then echo "symbols without the sshard_ prefix:"; echo "$$bad"; exit 1; fi
	@bad=$$(nm -g --defined-only $(STATIC_LIB) | awk 'NF == 3 {print $$3}' | grep -v '^sshard_' || true); \
	if [ -n "$$bad" ]; then echo "the static library exports other symbols:"; echo "$$bad" | head; exit 1; fi
	@nm -D --defined-only $(RELEASE_DIR)/libscylla_shard.so | awk '{print $$3}' | sort > $(C_BUILD)/symbols.exported
	@sed -n 's/^ \(sshard_[a-z0-9_]*\)@Base .*/\1/p' $(SYMBOLS) | sort > $(C_BUILD)/symbols.committed
	@diff -u $(C_BUILD)/symbols.committed $(C_BUILD)/symbols.exported || { \
		echo "the exported symbols differ from $(SYMBOLS): run make symbols (docs/ABI.md)"; exit 1; }
	@n=$$(wc -l < $(C_BUILD)/symbols.exported); echo "exports ok: $$n sshard_ symbols (.so and .a), as $(SYMBOLS) lists"
	@[ "$$(head -1 $(SYMBOLS) | cut -d' ' -f1)" = "$(LIB_SONAME)" ] || { echo "$(SYMBOLS) names another soname than $(LIB_SONAME)"; exit 1; }

# Adds the symbols the library exports and the list lacks, with this
# version (docs/ABI.md); never removes one.
symbols: lib
	python3 scripts/symbols.py $(RELEASE_DIR)/libscylla_shard.so $(SYMBOLS) $(LIB_VERSION) $(LIB_SONAME)

$(C_BUILD)/%: tests/c/%.c tests/c/harness.h $(HEADER) c-lib
	$(CC) -std=c11 $(C_WARN) -D_GNU_SOURCE -g -Iinclude -Itests/c $< -L$(C_LIB_DIR) -lscylla_shard -lpthread -o $@

$(C_BUILD)/examples/%: examples/c/%.c $(HEADER) c-lib
	@mkdir -p $(C_BUILD)/examples
	$(CC) -std=c11 $(C_WARN) -D_GNU_SOURCE -g -Iinclude $< -L$(C_LIB_DIR) -lscylla_shard -lpthread -o $@

c-examples: $(addprefix $(C_BUILD)/examples/,$(C_EXAMPLES))

# Tools the C checks need (valgrind, pkg-config, a C/C++ compiler, binutils,
# LuaJIT for the cdef load check: luajit2, see lua-deps).
c-deps:
	@missing=; for t in valgrind pkg-config $(CC) $(CXX) nm readelf luajit; do \
		command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
		apt-get update -qq && apt-get install -y -qq valgrind pkg-config build-essential binutils luajit2 >/dev/null; fi

# The cdef declarations load as they are into real LuaJIT (ffi.cdef +
# ffi.load) and Python cffi, with the C compiler's struct layouts.
abi-check: c-deps c-lib venv
	@mkdir -p $(C_BUILD)
	python3 scripts/gen_cdef.py --layout-program $(C_BUILD)/layout.c
	$(CC) -std=c11 $(C_WARN) -Iinclude $(C_BUILD)/layout.c -o $(C_BUILD)/layout
	$(C_BUILD)/layout > $(C_BUILD)/layout.txt
	luajit tests/lua/test_cdef.lua $(CDEF) $(abspath $(C_LIB_DIR))/libscylla_shard.so $(C_BUILD)/layout.txt
	SSHARD_CDEF=$(CDEF) SSHARD_LIBRARY=$(abspath $(C_LIB_DIR))/libscylla_shard.so \
		SSHARD_LAYOUT=$(C_BUILD)/layout.txt $(PYTHON) -m pytest -q tests/abi

# C tests against an emulated cluster, then again under valgrind.
c-test: c-deps $(addprefix $(C_BUILD)/,$(C_TESTS)) c-examples build-communicator
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) SCYLLA_COMMUNICATOR=$(abspath $(COMMUNICATOR)) \
		C_BUILD=$(C_BUILD) C_LIB_DIR=$(abspath $(C_LIB_DIR)) \
		bash scripts/c_tests.sh $(C_TESTS)

INSTALLED := $(LIBDIR)/libscylla_shard.so.$(LIB_VERSION) $(LIBDIR)/libscylla_shard.so \
	$(LIBDIR)/libscylla_shard.a $(LIBDIR)/pkgconfig/scylla_shard.pc \
	$(INCLUDEDIR)/scylla_shard.h $(INCLUDEDIR)/scylla_shard_cdef.h

install: static-lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 644 $(RELEASE_DIR)/libscylla_shard.so $(DESTDIR)$(LIBDIR)/libscylla_shard.so.$(LIB_VERSION)
	ln -sf libscylla_shard.so.$(LIB_VERSION) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libscylla_shard.so
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libscylla_shard.a
	install -m 644 $(HEADER) $(DESTDIR)$(INCLUDEDIR)/scylla_shard.h
	install -m 644 $(CDEF) $(DESTDIR)$(INCLUDEDIR)/scylla_shard_cdef.h
	python3 scripts/pkgconfig.py --prefix $(PREFIX) --libdir $(LIBDIR) --includedir $(INCLUDEDIR) \
		--version $(LIB_VERSION) > $(DESTDIR)$(LIBDIR)/pkgconfig/scylla_shard.pc

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED)) $(DESTDIR)$(LIBDIR)/libscylla_shard.so.*

# Installs into a scratch prefix and builds an example against the installed
# copy with pkg-config (dynamically and statically), then runs the dynamic
# one against the emulator.
c-install-test: build
	bash scripts/c_install_test.sh

c-check: c-header-check c-symbols abi-check c-test c-install-test


# ---------------------------------------------------------------------------
# Benchmarks (benches/README.md): every driver against one emulated cluster.
#   make bench                  full run, about 6 minutes on 2 cores
#   make bench BENCH_QUICK=1    about a minute
#   make bench BENCH_ARGS='--drivers sshard-rust --cases mixed/c256 --reps 5'
# Writes benches/results/latest.{json,png} and the results section of
# benches/README.md. The C client is built when examples/c/bench.c exists.
# Then the client memory benchmark (bench-memory below, about 3 minutes), the
# startup and scale benchmark (bench-scale below, about 7 minutes) and the
# restart storm at the shard-aware port post's scale (bench-storm below).
BENCH_ARGS ?=
BENCH_QUICK ?=

$(VENV)/.bench-installed: $(VENV)/.installed benches/requirements.txt
	$(VENV)/bin/pip install --quiet -r benches/requirements.txt
	touch $@

.PHONY: bench
bench: $(VENV)/.bench-installed python-binding
	$(CARGO) build --release -p scylla-shard -p scylla-emulator -p scylla-peer -p sshard-rust -p sshard-floor -p scylla-communicator
	$(if $(wildcard examples/c/bench.c),$(MAKE) $(C_BUILD)/examples/bench)
	$(PYTHON) benches/run.py --update-readme $(if $(filter-out 0,$(BENCH_QUICK)),--quick) $(BENCH_ARGS)
	$(MAKE) $(C_BUILD)/examples/bench_memory
	$(BENCH_MEMORY)
	$(BENCH_SCALE)
	$(BENCH_STORM)

# The restart storm at the shard-aware port post's scale
# (benches/restart_storm.py): 3 nodes x 30 shards, 150 sessions over 10
# processes, one node restarted; this library from C, the Rust scylla crate
# and the Python scylla-driver, with the shard-aware port and without.
# Rewrites the restart storm table of README.md; about 15 minutes.
#   make bench-storm BENCH_STORM_ARGS='--drivers sshard-c --modes shard-aware'
BENCH_STORM_ARGS ?=
BENCH_STORM = $(PYTHON) benches/restart_storm.py --update-readme $(if $(filter-out 0,$(BENCH_QUICK)),--quick) $(BENCH_STORM_ARGS)

.PHONY: bench-storm
bench-storm: $(VENV)/.bench-installed
	$(CARGO) build --release -p scylla-shard -p scylla-emulator -p scylla-peer
	$(MAKE) $(C_BUILD)/examples/bench
	$(BENCH_STORM)

# Client memory (benches/memory.py): RSS per connection, bytes per request in
# flight at 256 and 10,000, peak RSS paging through 100 MB; this library from
# C against the Rust scylla crate in the same run. Writes
# benches/results/memory.json and the memory section of benches/README.md.
#   make bench-memory BENCH_MEMORY_ARGS='--reps 5'
BENCH_MEMORY_ARGS ?=
BENCH_MEMORY = $(PYTHON) benches/memory.py --update-readme $(if $(filter-out 0,$(BENCH_QUICK)),--quick) $(BENCH_MEMORY_ARGS)

.PHONY: bench-memory
bench-memory: venv
	$(CARGO) build --release -p scylla-shard -p scylla-emulator -p scylla-peer
	$(MAKE) $(C_BUILD)/examples/bench_memory
	$(BENCH_MEMORY)

# Startup and scale (benches/scale.py): connect to pools full on 3 x 4 and
# 12 x 16 clusters; CPU per request, req/s and p50 at 1, 16, 256 and 4,096 in
# flight (3 x 4) and with 3, 6 and 12 nodes (4 shards, 256 in flight); every
# driver against the Rust scylla crate and the floor in the same run. Writes
# benches/results/scale.json and the scale section of benches/README.md;
# about 7 minutes, under 1 with BENCH_QUICK=1.
#   make bench-scale BENCH_SCALE_ARGS='--drivers sshard-c --inflight 1,4096'
BENCH_SCALE_ARGS ?=
BENCH_SCALE = $(PYTHON) benches/scale.py --update-readme $(if $(filter-out 0,$(BENCH_QUICK)),--quick) $(BENCH_SCALE_ARGS)

.PHONY: bench-scale
bench-scale: venv
	$(CARGO) build --release -p scylla-shard -p scylla-emulator -p scylla-peer -p sshard-rust -p sshard-floor
	$(MAKE) $(C_BUILD)/examples/bench
	$(BENCH_SCALE)


# ---------------------------------------------------------------------------
# Fuzzing the frame and value decoders (fuzz/): mutations of valid frames of
# every message type under an allocation-counting allocator. Findings (panics,
# inputs that allocate far beyond their size) are saved in fuzz/corpus/;
# commit them: make test replays the corpus.
#   make fuzz                       10 minutes, seed from the clock (printed)
#   make fuzz FUZZ_SECONDS=3600 FUZZ_SEED=42
FUZZ_SECONDS ?= 600
FUZZ_SEED ?=

fuzz:
	$(CARGO) run --release --manifest-path $(FUZZ_MANIFEST) --target-dir $(FUZZ_TARGET) --bin fuzz-decoders -- \
		--seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# ---------------------------------------------------------------------------
# Soak (benches/soak): SOAK_MINUTES (default 10) of mixed load at 256 in
# flight against an emulated 3x4 cluster, a node restarted every 30 s; prints
# RSS, open fds and requests/s each minute; fails if RSS grows more than 10%
# past the first minute or an acknowledged write is missing at the end.
SOAK_MINUTES ?= 10

.PHONY: soak
soak: build
	$(CARGO) build --release -p sshard-soak
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) $(RELEASE_DIR)/sshard-soak --minutes $(SOAK_MINUTES)

# ---------------------------------------------------------------------------
# Packaging (README "Packaging", docs/ABI.md).
#   make deb             Debian packages into target/deb/ (offline build from
#                        vendored crates; lintian: no errors, no warnings)
#   make deb-test        installs them, builds and runs a C program against
#                        /usr, loads them from LuaJIT, purges them
#   make vendor          only the source tree with its crates vendored, as a
#                        packager takes it (target/deb/libscylla-shard-VERSION)
#   make repro-check     the library built in another directory is identical
.PHONY: deb deb-deps deb-test vendor repro-check packaging-check

# The Debian tools, and what debian/control's Build-Depends name for the
# Python binding's package.
DEB_BUILD_PACKAGES := debhelper lintian fakeroot dpkg-dev dh-python python3-all-dev python3-cffi python3-setuptools
deb-deps:
	@missing=; for p in $(DEB_BUILD_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
		apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi

deb: deb-deps
	bash scripts/deb.sh

vendor:
	bash scripts/deb.sh --source-only

deb-test: deb c-deps lua-deps build
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) bash scripts/deb_test.sh

repro-check: lib
	bash scripts/repro_check.sh

packaging-check: repro-check deb-test

# ---------------------------------------------------------------------------
# LuaJIT binding (bindings/lua) with real luajit, and inside real nginx
# workers (Debian's nginx + libnginx-mod-http-lua), against the emulator.
#   make lua-test         both, about 20 s
#   make openresty-test   the nginx part alone
# LuaJIT is Debian's luajit2 (OpenResty's branch, what the nginx Lua module
# links): it conflicts with the `luajit` package, so both target lists name
# luajit2. Debian's nginx package would start a service when installed;
# under Docker /usr/sbin/policy-rc.d prevents it.
lua-deps:
	@missing=; for p in luajit2 nginx libnginx-mod-http-lua; do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
		apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi

openresty-test: lua-deps c-lib build-communicator
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) SCYLLA_COMMUNICATOR=$(abspath $(COMMUNICATOR)) \
		SCYLLA_SHARD_LIBRARY=$(abspath $(C_LIB_DIR))/libscylla_shard.so \
		SCYLLA_SHARD_CDEF=$(abspath $(CDEF)) python3 tests/lua/test_openresty.py

lua-test: lua-deps c-lib openresty-test
	SCYLLA_EMULATOR=$(abspath $(EMULATOR)) SCYLLA_SHARD_LIBRARY=$(abspath $(C_LIB_DIR))/libscylla_shard.so \
		SCYLLA_SHARD_CDEF=$(abspath $(CDEF)) bash scripts/lua_tests.sh
