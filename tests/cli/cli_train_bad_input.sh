#!/usr/bin/env bash
# `nsbi train` on bad input data exits 3 with a message naming the file and the problem, and leaves no model
# (nor a .partial of one); an existing model from another config is refused (exit 2) and kept. A foreign
# dataset written by Python trains, and the model records its names.
source "$(dirname "$0")/common.sh"
PYTHON=${PYTHON:-/usr/bin/python3}

# A small gaussian2d campaign with a reference dataset at θ0 = (0, 0).
cat >base.yaml <<YAML
campaign: {seed: 11, dir: good}
simulator: {name: gaussian2d}
simulate:
  n_samples: 2000
  block_size: 500
  reference: {theta: {mu2: 0, rho12: 0}}
train:
  network: {head: {hidden: [16]}}
  batch_size: 64
  n_shards: 4
  epochs: 2
  diagnostics: {grid_points: 2, n_events: 100}
YAML
expect_exit 0 simulate.out -- "$NSBI" simulate base.yaml
[ -e good/dataset.h5 ] && [ -e good/reference.h5 ] || fail "the simulation wrote no dataset and reference"

# make_case NAME: a campaign directory NAME holding copies of the good dataset and reference.
make_case() {
  mkdir -p "$1" && cp good/dataset.h5 good/reference.h5 "$1/"
}

# py SCRIPT ARGS...: runs a Python snippet with h5py and numpy; helpers write(...) and edit(...).
py() {
  local script=$1
  shift
  "$PYTHON" - "$@" <<PY || fail "python failed: $script"
import sys
import h5py
import numpy as np

def write(path, theta, x, pnames, onames, simulator):
    # The schema of docs/formats.md, "Writing a compatible file yourself".
    with h5py.File(path, "w") as f:
        f["theta"] = theta
        f["theta"].attrs["names"] = pnames
        f["x"] = x
        f["x"].attrs["names"] = onames
        f.attrs.update(format="nsbi-dataset", format_version=1, complete=1, simulator=simulator,
                       parameter_names=pnames, observable_names=onames,
                       prior="\n".join(f"{p}: {{kind: uniform, min: -1, max: 1}}" for p in pnames),
                       seed=0, config="", identity="")

$script
PY
}

# check_bad NP NAME PATTERN ARGS...: \`nsbi train\` on NP ranks on campaign NAME (extra ARGS) exits 3 with
# PATTERN in its output and leaves no model behind. Checks of the values, which ranks share by rows, run on 2
# ranks; checks on opening on 1, without mpirun (a failing mpirun takes a second to end).
check_bad() {
  local np=$1 name=$2 pattern=$3
  shift 3
  if [ "$np" -eq 1 ]; then
    expect_exit 3 "$name.out" -- "$NSBI" train base.yaml --output "$name" "$@"
  else
    expect_exit 3 "$name.out" -- mpi "$np" "$NSBI" train base.yaml --output "$name" "$@"
  fi
  expect_grep "$pattern" "$name.out"
  [ ! -e "$name/model.h5" ] || fail "$name: model.h5 exists after a failed run"
  [ ! -e "$name/model.h5.partial" ] || fail "$name: model.h5.partial exists after a failed run"
}

# A NaN in /x at row 123 (rank 0's half) and an Inf in /theta at row 1500 (rank 1's): the first is named.
make_case nan
py '
with h5py.File("nan/dataset.h5", "r+") as f:
    x = f["x"][:]; x[123, 1] = np.nan; f["x"][:] = x
    theta = f["theta"][:]; theta[1500, 0] = np.inf; f["theta"][:] = theta
'
check_bad 2 nan "'nan/dataset.h5' row 123 has NaN in /x column 1 \('x2'\)"
grep -q "row 1500" nan.out && fail "nan: the message names the later Inf row, not the first bad row"
# The Inf alone is found too, with its sign.
make_case inf
py '
with h5py.File("inf/dataset.h5", "r+") as f:
    theta = f["theta"][:]; theta[1500, 0] = -np.inf; f["theta"][:] = theta
'
check_bad 2 inf "'inf/dataset.h5' row 1500 has -Inf in /theta column 0 \('mu2'\)"

# An empty dataset.
make_case empty
py '
write("empty/dataset.h5", np.zeros((0, 2)), np.zeros((0, 2)), ["mu2", "rho12"], ["x1", "x2"], "gaussian2d")
'
check_bad 1 empty "'empty/dataset.h5' is empty: '/theta' and '/x' have 0 rows"

# A truncated file.
make_case truncated
truncate -s $(($(stat -c %s good/dataset.h5) / 2)) truncated/dataset.h5
check_bad 1 truncated "cannot open 'truncated/dataset.h5' for reading: .*truncated file"

# A reference dataset with other parameter names than the dataset.
make_case refnames
py '
with h5py.File("refnames/reference.h5", "r+") as f:
    f["theta"].attrs["names"] = ["a", "b"]
    f.attrs["parameter_names"] = ["a", "b"]
'
check_bad 1 refnames "the reference dataset 'refnames/reference.h5' has parameters \(a, b\) and observables \
\(x1, x2\), but the dataset 'refnames/dataset.h5' has \(mu2, rho12\) and \(x1, x2\)"

# A reference dataset whose θ is not one point.
make_case refpoint
py '
with h5py.File("refpoint/reference.h5", "r+") as f:
    theta = f["theta"][:]; theta[777, 1] = 0.25; f["theta"][:] = theta
'
check_bad 2 refpoint "the reference dataset 'refpoint/reference.h5' has θ = \(mu2 = 0, rho12 = 0.25\) in \
row 777 but θ = \(mu2 = 0, rho12 = 0\) in row 0"

# A dataset that claims to come from gaussian2d with other parameter names (simulator.name is gaussian2d).
make_case claims
py '
rng = np.random.default_rng(1)
write("claims/dataset.h5", rng.uniform(-1, 1, (1000, 2)), rng.normal(size=(1000, 2)), ["a", "b"],
      ["x1", "x2"], "gaussian2d")
'
check_bad 1 claims \
  "'claims/dataset.h5' says it comes from gaussian2d but its parameter or observable names differ" \
  --set train.reference=marginal

# No reference dataset.
make_case noref
rm noref/reference.h5
check_bad 1 noref \
  "there is no reference dataset 'noref/reference.h5'.*simulate.reference.theta.*reference: marginal"

# A foreign dataset (its own simulator, 2 parameters, 3 observables) trains with reference: marginal, and the
# model records the file's names.
mkdir -p foreign
py '
rng = np.random.default_rng(2)
theta = rng.uniform(-1, 1, (4000, 2))
x = np.column_stack([theta[:, 0] + rng.normal(size=4000), theta[:, 1] * rng.normal(size=4000),
                     rng.normal(size=4000)])
write("foreign/dataset.h5", theta, x, ["alpha", "beta"], ["o1", "o2", "o3"], "mysim")
'
expect_exit 0 foreign.out -- mpi 2 "$NSBI" train base.yaml --output foreign --set train.reference=marginal
expect_grep "'foreign/dataset.h5' was written by 'mysim', not simulator.name = gaussian2d" foreign.out
py '
with h5py.File("foreign/model.h5", "r") as f:
    got = {k: [str(v) for v in f.attrs[k]] for k in ("parameter_names", "observable_names")}
    got["simulator"] = str(f.attrs["simulator"])
    got["reference"] = str(f.attrs["reference"])
    got["input_order"] = [str(v) for v in f["architecture"].attrs["input_order"]]
want = {"parameter_names": ["alpha", "beta"], "observable_names": ["o1", "o2", "o3"], "simulator": "mysim",
        "reference": "marginal", "input_order": ["o1", "o2", "o3", "alpha", "beta"]}
if got != want:
    sys.exit(f"foreign/model.h5 has {got}, expected {want}")
'
[ ! -e foreign/model.h5.partial ] || fail "foreign: model.h5.partial left after a successful run"

# The same config again: nothing to do. Another config without --force: refused (exit 2), the model kept.
sum_before=$(md5sum <foreign/model.h5)
expect_exit 0 again.out -- mpi 2 "$NSBI" train base.yaml --output foreign --set train.reference=marginal
expect_grep "is complete and was trained from this config: nothing to do" again.out
expect_exit 2 other.out -- mpi 2 "$NSBI" train base.yaml --output foreign --set train.reference=marginal \
  --set train.epochs=3
expect_grep "'foreign/model.h5' exists and was trained from another config or dataset; use --force" other.out
[ "$(md5sum <foreign/model.h5)" = "$sum_before" ] || fail "the existing model was modified"
[ ! -e foreign/model.h5.partial ] || fail "a refused run left model.h5.partial"
finish
