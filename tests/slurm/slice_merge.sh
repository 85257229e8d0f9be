#!/usr/bin/env bash
# What the job arrays of `nsbi submit` run, without SLURM: train --members k/K and calibrate/coverage
# --slice k/K each do their share (on 1 and 2 ranks), the plain commands merge, and the outputs are bit for
# bit those of `nsbi run`. Also the usage errors of the new options.
source "$(dirname "$0")/../cli/common.sh"
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)

cat >small.yaml <<YAML
campaign: {seed: 21, dir: unused}
simulator: {name: gaussian2d}
simulate:
  n_samples: 10000
  reference: {theta: {mu2: 0, rho12: 0}}
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
train:
  network: {head: {hidden: [8, 8]}}
  epochs: 2
  ensemble: 3
  diagnostics: {grid_points: 2, n_events: 100}
infer:
  estimators: [learned, exact]
  grid:
    mu2: {min: -0.9, max: 0.9, points: 5}
    rho12: {min: -0.9, max: 0.9, points: 5}
calibrate:
  estimators: [learned, exact]
  grid:
    mu2: {values: [-0.3, 0.3]}
    rho12: {values: [0.0]}
  n_toys: 30
  toys_per_item: 10
coverage:
  estimators: [exact]
  methods: [wilks, neyman]
  grid:
    mu2: {values: [0.0]}
    rho12: {values: [0.0]}
  n_toys: 30
  toys_per_item: 10
pipeline: [simulate, train, infer, calibrate, coverage]
YAML

expect_exit 0 run.out -- "$NSBI" run small.yaml --output ref

# The same campaign as the arrays run it: shares first, then the merge; ranks as a job might have them.
out=(--output sliced)
expect_exit 0 sim.out -- "$NSBI" simulate small.yaml "${out[@]}"
expect_exit 0 m0.out -- "$NSBI" train small.yaml "${out[@]}" --members 0/2
expect_grep "train: 2 member\(s\) \(slice 0/2 of 3\)" m0.out
[ -f sliced/model.h5 ] && fail "train --members wrote a model"
expect_exit 0 m1.out -- "$NSBI" train small.yaml "${out[@]}" --members 1/2
expect_grep "train: 1 member\(s\) \(slice 1/2 of 3\)" m1.out
expect_exit 0 merge.out -- "$NSBI" train small.yaml "${out[@]}"
for k in 0 1 2; do expect_grep "train member $k: already trained" merge.out; done
expect_exit 0 infer.out -- "$NSBI" infer small.yaml "${out[@]}"
expect_exit 0 c0.out -- mpi 2 "$NSBI" calibrate small.yaml "${out[@]}" --slice 0/3
expect_grep "slice 0/3: its 2 of 6 work items are done" c0.out
[ -f sliced/calibrate.json ] && fail "calibrate --slice wrote results"
# nsbi status (no SLURM here) sees the journaled share: 2 of 6 items, a stage at work.
expect_exit 0 status1.json -- "$NSBI" status small.yaml "${out[@]}" --json
for stage in simulate train infer; do expect_grep "\"stage\": \"$stage\", \"state\": \"complete\"" status1.json; done
expect_grep '"stage": "calibrate", "state": "running", "done": 2, "total": 6, "unit": "work items"' status1.json
expect_grep '"stage": "coverage", "state": "pending", "done": 0, "total": 3' status1.json
expect_exit 0 c2.out -- "$NSBI" calibrate small.yaml "${out[@]}" --slice 2/3
expect_exit 0 c1.out -- "$NSBI" calibrate small.yaml "${out[@]}" --slice 1/3
ls sliced/work/calibrate/*-slice0of3-rank*.journal >/dev/null 2>&1 || fail "no slice 0 journal: $(ls sliced/work/calibrate)"
expect_exit 0 cmerge.out -- "$NSBI" calibrate small.yaml "${out[@]}"
expect_grep "resuming: 6 of 6 work items already done" cmerge.out
expect_exit 0 v0.out -- "$NSBI" coverage small.yaml "${out[@]}" --slice 0/2
expect_exit 0 v1.out -- "$NSBI" coverage small.yaml "${out[@]}" --slice 1/2
expect_exit 0 vmerge.out -- "$NSBI" coverage small.yaml "${out[@]}"
expect_grep "resuming: 3 of 3 work items already done" vmerge.out

expect_exit 0 compare.txt -- /usr/bin/python3 "$SOURCE_DIR/tests/slurm/compare_outputs.py" sliced ref \
  results.h5 model.h5
expect_grep "0 difference" compare.txt

expect_exit 0 status2.txt -- "$NSBI" status small.yaml "${out[@]}"
[ "$(grep -cE '^(simulate|train|infer|calibrate|coverage) +complete' status2.txt)" -eq 5 ] ||
  fail "nsbi status does not show 5 complete stages: $(cat status2.txt)"
# A directory that `nsbi submit` did not write has no recorded config: say so.
expect_exit 2 status3.txt -- "$NSBI" status sliced
expect_grep "holds no slurm/config.yaml .*nsbi status CONFIG" status3.txt

# Usage errors: exit 2 and a message that says what is wrong.
expect_exit 2 bad1.out -- "$NSBI" calibrate small.yaml --slice 3/3
expect_grep "--slice 3/3: expected k/K with whole numbers 0 <= k < K" bad1.out
expect_exit 2 bad2.out -- "$NSBI" train small.yaml --slice 0/2
expect_grep "--slice is an option of nsbi calibrate and nsbi coverage only" bad2.out
expect_exit 2 bad3.out -- "$NSBI" calibrate small.yaml --members 0/2
expect_grep "--members is an option of nsbi train only" bad3.out
expect_exit 2 bad4.out -- "$NSBI" run small.yaml --dry-run
expect_grep "--dry-run is an option of nsbi submit only" bad4.out
expect_exit 2 bad5.out -- "$NSBI" coverage small.yaml --slice x/2
expect_grep "expected k/K" bad5.out
expect_exit 2 bad6.out -- "$NSBI" status small.yaml --force
expect_grep "--force is an option of" bad6.out
finish
