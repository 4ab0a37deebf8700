#!/usr/bin/env bash
# Installs every Debian package MoA.cpp's build, tests and fixture scripts need, then the npm
# packages of tests/js (the JavaScript reference implementations some tests run live).
# A no-op (no apt or npm call at all) when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev      # GEMM; the OpenMP build nests safely inside our OpenMP regions
  nlohmann-json3-dev          # JSON
  libfmt-dev                  # string formatting (GCC 12 has no <format>)
  libcli11-dev                # command line
  libgtest-dev libgmock-dev   # tests
  libbenchmark-dev            # micro benchmarks
  libsentencepiece-dev        # tokenizer.model
  coinor-libcbc-dev           # MILP (optimizer cross-check)
  wamerican                   # word list for synthetic retrieval keys
  chromium                    # headless browser: test_report renders `moa report`'s HTML
  python3-numpy               # tests/data/make_gguf_fixtures.py (with a llama.cpp tree's gguf-py)
  python3-sentencepiece       # gguf-py (a llama.cpp tree's) imports it at start-up
  clang-14 libclang-rt-14-dev libomp-14-dev  # libFuzzer harnesses (fuzz/, make fuzz)
  libcpp-httplib-dev          # HTTP for moa serve
  libopenmpi-dev openmpi-bin  # MPI data parallelism (MOA_MPI) and mpirun for its tests
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm for tests/js; NodeSource's nodejs package bundles npm, Debian's has it apart.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/js: exactly the versions of package-lock.json, again whenever the lock file is newer.
js=tests/js
if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
  echo "install-deps: npm ci in $js" >&2
  npm ci --prefix "$js" --no-audit --no-fund >/dev/null
  touch "$js/node_modules"
fi
