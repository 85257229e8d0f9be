#!/usr/bin/env bash
# The README's main command: installs the dependencies (group build), builds the nsbi executable, runs a
# built-in example campaign end to end on 2 MPI ranks (`nsbi run`: the stages of its pipeline) and draws
# its report.
# Usage: scripts/example.sh [examples/<campaign>.yaml] [extra nsbi options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
config=${1:-$root/examples/quickstart.yaml}
shift || true

echo "== example: dependencies"
bash "$root/scripts/install-deps.sh" build
echo "== example: build (the nsbi executable only)"
BUILD_DIR=$root/build BUILD_TARGETS=nsbi bash "$root/scripts/build.sh"
echo "== example: nsbi run $config"
mpirun -np 2 --oversubscribe "$root/build/jobs/nsbi" run "$config" "$@"
# The report goes into the campaign directory: --output or --set campaign.dir if given, else the file's.
dir=$(sed -n 's/^  dir: *//p' "$config" | head -1)
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --output) dir=${args[i + 1]} ;;
    --output=*) dir=${args[i]#--output=} ;;
    campaign.dir=*) dir=${args[i]#campaign.dir=} ;;
  esac
done
echo "== example: report"
/usr/bin/python3 "$root/scripts/plot_report.py" "$dir"
