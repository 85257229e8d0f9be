#!/usr/bin/env bash
# The README's main command: installs the dependencies, builds, and runs a built-in example campaign on
# 2 MPI ranks: simulate, then train. Usage: scripts/example.sh [examples/<campaign>.yaml] [extra nsbi options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
config=${1:-$root/examples/gaussian2d.yaml}
shift || true

bash "$root/scripts/install-deps.sh"
BUILD_DIR=$root/build bash "$root/scripts/build.sh"
for stage in simulate train; do
  mpirun -np 2 --oversubscribe "$root/build/jobs/nsbi" "$stage" "$config" "$@"
done
