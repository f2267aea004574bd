# The familiar entry points; CMake (with Ninja where present) does the work.
#
#   make                 build (library, command, tests, benchmarks)
#   make run             build, then run the main job: weft lab
#   make test            build, then run every test (one process per case)
#   make bench           build, then run every benchmark
#   make stress          build, then run every stress program with --long
#   make install         install under PREFIX (default /usr/local); DESTDIR stages
#   make uninstall       remove what the last install from BUILD wrote
#   make test SANITIZE=thread     ThreadSanitizer build and tests
#   make test SANITIZE=address    AddressSanitizer + UBSan build and tests
#   make CC=clang ...             another compiler (its own build directory)
#
# Missing Debian packages are installed by scripts/deps on first use.

SANITIZE ?=
PREFIX ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# One build directory per compiler and sanitizer, so they never mix.
ifeq ($(origin CC),default)
CC_NAME :=
CMAKE_CC :=
else
CC_NAME := -$(notdir $(CC))
CMAKE_CC := -DCMAKE_C_COMPILER=$(CC)
endif
BUILD ?= build$(CC_NAME)$(if $(SANITIZE),-$(SANITIZE))

GENERATOR := $(if $(shell command -v ninja 2>/dev/null),-G Ninja,)
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all build run test bench stress install uninstall clean distclean deps

all: build

$(DEPS_STAMP): scripts/deps
	@scripts/deps
	@mkdir -p $(BUILD) && touch $@

deps:
	@scripts/deps

$(BUILD)/CMakeCache.txt: $(DEPS_STAMP)
	cmake -S . -B $(BUILD) $(GENERATOR) $(CMAKE_CC) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	      -DWEFT_SANITIZE=$(SANITIZE) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/weft lab

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@scripts/run-bench $(BUILD)

# Every tests/stress/test_stress_* program, once, with its long preset
# (--long, from tests/stress/stress.h; each program says what it stands for).
# Stops at the first program that fails.
stress: build
	@set -e; for t in $(BUILD)/tests/stress_test_stress_*; do \
	    [ -x "$$t" ] || continue; \
	    echo "== $$t --long"; "$$t" --long; done

# DESTDIR, when given, is passed on to cmake --install through the environment.
# cmake --install lists the files it wrote in install_manifest.txt, which the
# install tests' own installs overwrite; keep a copy for uninstall.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)
	cp $(BUILD)/install_manifest.txt $(BUILD)/.installed-files

uninstall:
	@[ -f $(BUILD)/.installed-files ] || { echo "nothing installed from $(BUILD)"; exit 1; }
	xargs -d '\n' rm -f -- < $(BUILD)/.installed-files
	rm -f $(BUILD)/.installed-files

clean:
	@[ ! -d $(BUILD) ] || cmake --build $(BUILD) --target clean

distclean:
	rm -rf build build-*
