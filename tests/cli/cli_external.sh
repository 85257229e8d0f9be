#!/usr/bin/env bash
# An external simulator program (examples/external/smeared_gaussian.py, docs/external_simulators.md) from the
# command line: a campaign simulates (with gold), trains with a gold loss and calibrates end to end on 2 ranks,
# and its dataset is the same bits on 1 rank; a program that crashes, or answers with the wrong shape, stops
# `nsbi simulate` with exit 3 and a message naming the batch, keeps the blocks finished before it, and the same
# command resumes from them once the program works.
source "$(dirname "$0")/common.sh"
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
SIM=$SOURCE_DIR/examples/external/smeared_gaussian.py

cat >external.yaml <<YAML
campaign: {seed: 5, dir: run}
simulator: {name: external, command: [$SIM], timeout_seconds: 120}
simulate:
  n_samples: 8000
  block_size: 1000
  gold: true
  proposal: {mu: {kind: uniform, min: -1.5, max: 1.5}}
  reference: {theta: {mu: 0}}
  observed: {theta: {mu: 0.5}, n_events: 20}
train:
  loss: alices
  network: {head: {hidden: [16, 16], activation: silu}}
  epochs: 3
  diagnostics: {grid_points: 2, n_events: 100}
calibrate:
  estimators: [learned]
  grid: {mu: {values: [0.0, 0.5]}}
  n_toys: 20
  toys_per_item: 10
pipeline: [simulate, train, calibrate]
YAML

expect_exit 0 run.out -- mpi 2 "$NSBI" run external.yaml
for f in run/dataset.h5 run/reference.h5 run/observed.h5 run/model.h5 run/calibrate.json; do
  [ -f "$f" ] || fail "nsbi run with the external simulator wrote no $f"
done
h5dump -a /loss run/model.h5 2>/dev/null | grep '"alices"' >/dev/null || fail "the model does not record loss alices"
h5dump -d /gold/score -c 1 run/dataset.h5 >/dev/null 2>&1 || fail "the dataset has no /gold/score"
# The program keys each row's stream by (seed, index): 1 rank writes the same dataset as 2.
expect_exit 0 one.out -- mpi 1 "$NSBI" simulate external.yaml --output one
h5diff -q run/dataset.h5 one/dataset.h5 /x /x >/dev/null 2>&1 || fail "/x differs between 2 ranks and 1 rank"
h5diff -q run/dataset.h5 one/dataset.h5 /gold/log_r /gold/log_r >/dev/null 2>&1 ||
  fail "/gold/log_r differs between 2 ranks and 1 rank"

# A program that crashes at its 3rd batch, once: exit 3 naming the batch, 2 blocks kept; the rerun resumes.
crash="simulator.command=[$SIM, --crash-at-batch, 2, --once, $WORK/crashed]"
expect_exit 3 crash.out -- mpi 1 "$NSBI" simulate external.yaml --output crash --set "$crash"
expect_grep "batch 2 \(1000 rows from index 2000\)" crash.out
expect_grep "exited with status 3" crash.out
[ -f crash/dataset.h5.partial ] || fail "the crashed run left no dataset.h5.partial"
expect_exit 0 resume.out -- mpi 1 "$NSBI" simulate external.yaml --output crash --set "$crash"
expect_grep "resuming .*2000 of 8000 rows already done" resume.out
h5diff -q one/dataset.h5 crash/dataset.h5 /x /x >/dev/null 2>&1 || fail "the resumed dataset differs"

# A program that answers with one observable too few: exit 3, the batch and both shapes named.
shape="simulator.command=[$SIM, --wrong-shape-at-batch, 1]"
expect_exit 3 shape.out -- mpi 2 "$NSBI" simulate external.yaml --output shape --set "$shape"
expect_grep "batch 1 .*1 observables.*asked for 1000 rows, 2 observables" shape.out

# A command that cannot run is a config error.
expect_exit 2 missing.out -- "$NSBI" simulate external.yaml --set "simulator.command=[/nonexistent/sim]"
expect_grep "simulator.command" missing.out
finish
