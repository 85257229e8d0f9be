#!/usr/bin/env bash
# Installs every Debian package nsbi's build, tests, benchmarks and plots need. Idempotent: installs only
# what is missing, so a prepared machine pays nothing. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin            # MPI
  openssh-client                        # mpirun wants an rsh agent even on one node
  libhdf5-openmpi-dev hdf5-tools        # parallel HDF5 (+ h5dump/h5diff used by tests)
  libtrilinos-kokkos-dev                # Kokkos 3.4 (Serial backend)
  libdnnl-dev ocl-icd-opencl-dev       # oneDNN (its CMake config needs the OpenCL headers, a Recommends)
  libyaml-cpp-dev
  libgtest-dev libbenchmark-dev
  python3 python3-numpy python3-h5py python3-matplotlib  # plots, benchmark baselines, format checks
  python3-torch                         # the PyTorch baseline of benchmarks/train_vs_pytorch.py
  libopenblas0-pthread                  # a fair BLAS for the numpy/PyTorch baselines
  slurm-wlm munge                       # the real-SLURM tests start a single-node cluster (docs/slurm.md)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
