#!/usr/bin/env bash
# Configures and builds nsbi into BUILD_DIR (default: build/). Extra arguments go to cmake's configure step,
# e.g. scripts/build.sh -DNSBI_ENABLE_SANITIZERS=ON with BUILD_DIR=build-asan. BUILD_TARGETS (default: all)
# names the targets to build, e.g. BUILD_TARGETS=nsbi.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
