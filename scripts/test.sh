#!/usr/bin/env bash
# The README's test command: installs the dependencies (groups build and test), builds, and runs the whole
# test suite twice, in a Release build and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "== test: dependencies"
bash "$root/scripts/install-deps.sh" build test
echo "== test: Release build"
BUILD_DIR=$root/build bash "$root/scripts/build.sh"
echo "== test: Release tests"
(cd "$root/build" && ctest --output-on-failure -j2)
echo "== test: AddressSanitizer + UndefinedBehaviorSanitizer build"
BUILD_DIR=$root/build-asan BUILD_TYPE=RelWithDebInfo bash "$root/scripts/build.sh" -DNSBI_ENABLE_SANITIZERS=ON
echo "== test: AddressSanitizer + UndefinedBehaviorSanitizer tests"
(cd "$root/build-asan" && ctest --output-on-failure -j2)
