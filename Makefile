# The two commands of the README: `make dev` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh).

JOBS        ?= $(shell nproc)
BUILD_DIR   ?= build/release
ASAN_DIR    ?= build/asan
CMAKE_FLAGS ?=

.PHONY: deps build build-asan dev test test-release test-asan bench clean

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test under AddressSanitizer + UndefinedBehaviorSanitizer.
build-asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DANNAL_SANITIZE=ON -DANNAL_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)

# Builds and runs a single-node store: data in ./annal-data, HTTP on
# 127.0.0.1:7070, binary protocol on 127.0.0.1:7071. Ctrl-C stops it cleanly.
dev: build
	$(BUILD_DIR)/cli/annal dev

test-release: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-asan: build-asan
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) --timeout 900

test: test-release test-asan

bench: build
	$(BUILD_DIR)/bench/engine_bench

clean:
	rm -rf build
