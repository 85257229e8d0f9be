#!/usr/bin/env bash
# The README's test command: installs the dependencies (groups build and test), builds, and runs the whole
# test suite twice, in a Release build and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

bash "$root/scripts/install-deps.sh" build test

echo "== Release build and tests"
BUILD_DIR=$root/build bash "$root/scripts/build.sh"
(cd "$root/build" && ctest --output-on-failure -j2)

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
BUILD_DIR=$root/build-asan BUILD_TYPE=RelWithDebInfo bash "$root/scripts/build.sh" -DNSBI_ENABLE_SANITIZERS=ON
(cd "$root/build-asan" && ctest --output-on-failure -j2)
