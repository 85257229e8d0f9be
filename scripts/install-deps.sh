#!/usr/bin/env bash
# Installs the Debian 12 packages nsbi needs, by group. Idempotent: installs only what is missing, so a
# prepared machine pays nothing; never Recommends (each group lists what it uses). Needs root (or sudo).
# Usage: scripts/install-deps.sh [GROUP...]      (no GROUP: all of them)
#   build       build nsbi, run a campaign, draw its report (what scripts/example.sh needs)
#   test        the test suite's extras (scripts/test.sh installs build and test)
#   benchmarks  the numpy baselines of benchmarks/, and venv for the PyPI environments of the PyTorch ones
#   ci          what CI itself runs: a clean Debian root (scripts/clean_root.sh), libFuzzer, Python venvs
set -euo pipefail

build=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin            # MPI
  openssh-client                        # mpirun wants an rsh agent even on one node
  libhdf5-openmpi-dev                   # parallel HDF5
  libtrilinos-kokkos-dev                # Kokkos 3.4 (Serial backend)
  libdnnl-dev ocl-icd-opencl-dev        # oneDNN (its CMake config needs the OpenCL headers, a Recommends)
  libyaml-cpp-dev
  libgtest-dev libbenchmark-dev         # the configure step looks for them (tests and benchmarks are on)
  python3 python3-numpy python3-h5py python3-matplotlib  # the report, format checks
)
test=(
  hdf5-tools                            # h5dump/h5diff used by the CLI tests
  slurm-wlm munge                       # the real-SLURM tests start a single-node cluster (docs/slurm.md)
)
benchmarks=(
  python3-numpy python3-h5py            # the numpy baselines; compare_builds.py reads both builds' HDF5 outputs
  python3-venv                          # benchmarks/pypi_env.py: today's PyTorch from PyPI, not Debian's 1.13
  libopenblas0-pthread                  # a fair BLAS for the numpy baselines
)
ci=(
  debootstrap                           # scripts/clean_root.sh: a fresh Debian 12 root for the README run
  clang libclang-rt-14-dev libomp-dev   # libFuzzer (its runtime is in libclang-rt); clang finds OpenMP (oneDNN) in libomp-dev
  python3-venv
)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(build test benchmarks ci)
packages=()
for g in "${groups[@]}"; do
  case $g in
    build) packages+=("${build[@]}") ;;
    test) packages+=("${test[@]}") ;;
    benchmarks) packages+=("${benchmarks[@]}") ;;
    ci) packages+=("${ci[@]}") ;;
    *) echo "install-deps: unknown group '$g' (groups: build test benchmarks ci)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages of ${groups[*]} present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"
