# Thin wrapper over CMake. `make` builds build/bin/moa; `make test` installs what is missing,
# builds, runs every unit test, then the unit tests again under ASan+UBSan; `make demo` runs the
# main job; `make bench` runs the benchmarks of bench/ (on an idle machine: they time).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan

TSAN_BUILD ?= build-tsan

.PHONY: all deps build test asan tsan fuzz demo bench format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest -L unit --output-on-failure -j1
	$(MAKE) asan
	$(MAKE) tsan
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (OpenMP's runtime is left to
# its own devices: LSan would report its thread pool as leaks). -O1 -g1 (line tables only): at
# -O2 -g a sanitized translation unit took 2-2.5x as long to compile (cmd_eval.cpp 61 s vs 29 s),
# which made the sanitizer build most of CI's time.
asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOA_SANITIZE=ON \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest -L unit --output-on-failure -j1

# The server's tests (its engine thread, HTTP threads and streams) under ThreadSanitizer: only the
# binaries they need are built. The tests run the server with one compute thread, so OpenMP's
# uninstrumented runtime starts no workers.
tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOA_TSAN=ON \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS) --target moa test_serve
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest -R '^test_serve$$' --output-on-failure

# libFuzzer harnesses (fuzz/) built with clang, ASan and UBSan, each run for FUZZ_SECONDS from its
# seed corpus; `make test` runs them for FUZZ_SMOKE_SECONDS each.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 15
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) scripts/fuzz.sh

demo: build
	@scripts/demo.sh

# The kernel micro benchmarks (each kernel checked against a plain computation before it is
# timed) and the optimiser at Llama-7B shape, with the commands docs/PERF.md records.
bench: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target bench_kernels bench_optimizer
	$(BUILD)/bin/bench_kernels --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
	$(BUILD)/bin/bench_optimizer --repeat 3 --threads 2 --cbc-seconds 120

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz
