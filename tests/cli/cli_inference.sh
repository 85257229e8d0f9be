#!/usr/bin/env bash
# The inference stages from the command line, on a small gaussian2d campaign: `nsbi run` end to end
# (simulate, train, infer, calibrate, coverage) with the report script; calibrate on 2 ranks gives the same
# belts as on 1 rank, bit for bit; a calibrate killed halfway resumes without redoing finished work items and
# ends with the same belts; a complete stage is skipped by a second run; observed data from an observed-data
# file with several datasets.
source "$(dirname "$0")/common.sh"
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)

cat >small.yaml <<YAML
campaign: {seed: 3, dir: run}
simulator: {name: gaussian2d}
simulate:
  n_samples: 20000
  reference: {theta: {mu2: 0, rho12: 0}}
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
train:
  network: {head: {hidden: [16, 16], activation: silu}}
  epochs: 3
  diagnostics: {grid_points: 2, n_events: 100}
infer:
  estimators: [learned, exact]
  grid:
    mu2: {min: -0.9, max: 0.9, points: 13}
    rho12: {min: -0.9, max: 0.9, points: 13}
calibrate:
  estimators: [learned, exact]
  grid:
    mu2: {values: [-0.3, 0.3]}
    rho12: {values: [-0.3, 0.0, 0.3]}
  n_toys: 40
  toys_per_item: 10
coverage:
  grid:
    mu2: {values: [0.0]}
    rho12: {values: [0.0]}
  estimators: [learned, exact]
  n_toys: 40
  toys_per_item: 20
pipeline: [simulate, train, infer, calibrate, coverage]
YAML

# End to end on 2 ranks.
expect_exit 0 run.out -- mpi 2 "$NSBI" run small.yaml
for stage in simulate train infer calibrate coverage; do
  [ -s run/$stage.json ] || fail "nsbi run wrote no $stage.json"
done
expect_grep '"comparison": \{"best_fit_difference"' run/infer.json
expect_grep '"observed_confidence_sets"' run/calibrate.json
expect_grep '"clopper_pearson_95"' run/coverage.json
[ -d run/work/calibrate ] && fail "calibrate left its journals after completing"
# A second run skips every stage.
expect_exit 0 rerun.out -- mpi 2 "$NSBI" run small.yaml
expect_grep "infer: complete for this config: nothing to do" rerun.out
expect_grep "calibrate: complete for this config: nothing to do" rerun.out
expect_grep "coverage: complete for this config: nothing to do" rerun.out
# The report.
if /usr/bin/python3 -c "import matplotlib, h5py" 2>/dev/null; then
  expect_exit 0 report.out -- /usr/bin/python3 "$SOURCE_DIR/scripts/plot_report.py" run
  [ -s run/report/index.html ] || fail "plot_report.py wrote no index.html"
fi

# Calibrate on 1 rank into a copy: the same belts and toy distributions, bit for bit.
mkdir -p one && cp run/dataset.h5 run/reference.h5 run/observed.h5 run/model.h5 one/
expect_exit 0 one.out -- "$NSBI" calibrate small.yaml --output one
for path in /calibrate/learned/thresholds /calibrate/learned/q_toys /calibrate/exact/q_toys \
  /calibrate/learned/observed_q; do
  h5same run/results.h5 one/results.h5 $path
done

# The same observed events in an observed-data file holding two datasets: refused until one is named, then
# the same scan, bit for bit.
if /usr/bin/python3 -c "import h5py" 2>/dev/null; then
  mkdir -p named && cp run/model.h5 named/
  /usr/bin/python3 - <<'PY' || fail "cannot write named/events.h5"
import h5py
with h5py.File("run/observed.h5", "r") as f:
    x, names = f["x"][()], list(f["x"].attrs["names"])
with h5py.File("named/events.h5", "w") as f:
    f.attrs["format"] = "nsbi-observed"
    for name, rows in (("whole", x), ("head", x[:5])):
        g = f.create_group("observed/" + name)
        g.create_dataset("x", data=rows)
        g.attrs["observables"] = names
PY
  expect_exit 3 ambiguous.out -- "$NSBI" infer small.yaml --output named --set infer.observed=events.h5
  expect_grep "holds 2 observed datasets \\(head, whole\\): name the one to use" ambiguous.out
  expect_exit 0 named.out -- "$NSBI" infer small.yaml --output named --set infer.observed=events.h5 \
    --set infer.observed_dataset=whole
  h5same run/results.h5 named/results.h5 /infer/learned/t
fi

# Kill a 2-rank calibrate with more toys halfway, resume, compare with an uninterrupted run.
mkdir -p killed whole && cp one/*.h5 killed/ && cp one/*.h5 whole/ && rm -f killed/results.h5 whole/results.h5
big=(--set calibrate.n_toys=400 --set calibrate.estimators=[learned])
expect_exit 0 whole.out -- mpi 2 "$NSBI" calibrate small.yaml --output whole "${big[@]}"
stop_when_journaled 4000 "killed/work/calibrate/*.journal" killed.out \
  "^$NSBI calibrate small.yaml --output killed" -- "$NSBI" calibrate small.yaml --output killed "${big[@]}"
expect_grep "calibrate: stopped by a signal; the finished work items are kept" killed.out
[ -e killed/calibrate.json ] && fail "the interrupted calibrate wrote its summary"
expect_exit 0 resumed.out -- mpi 2 "$NSBI" calibrate small.yaml --output killed "${big[@]}"
expect_grep "calibrate: resuming: [1-9][0-9]* of 240 work items already done" resumed.out
for path in /calibrate/learned/thresholds /calibrate/learned/q_toys /calibrate/learned/observed_q; do
  h5same whole/results.h5 killed/results.h5 $path
done
finish
