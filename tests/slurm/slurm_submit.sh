#!/usr/bin/env bash
# Real SLURM, test 1: a small gaussian2d campaign (simulate, train with an ensemble of 2, infer, calibrate,
# coverage) submitted with `nsbi submit` to a single-node cluster started here: the jobs chain through their
# dependencies, train/calibrate/coverage run as 2-task job arrays and merge jobs, every job completes, and
# every array of the outputs is bit for bit what `nsbi run` gives for the same config; with launcher mpirun,
# then srun (--mpi=pmix).
source "$(dirname "$0")/slurm_common.sh"

cat >small.yaml <<YAML
campaign: {name: slurmtest, seed: 11, dir: unused}
simulator: {name: gaussian2d}
simulate:
  n_samples: 20000
  reference: {theta: {mu2: 0, rho12: 0}}
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
train:
  network: {head: {hidden: [16, 16], activation: silu}}
  epochs: 2
  ensemble: 2
  diagnostics: {grid_points: 2, n_events: 100}
infer:
  estimators: [learned, exact]
  grid:
    mu2: {min: -0.9, max: 0.9, points: 7}
    rho12: {min: -0.9, max: 0.9, points: 7}
calibrate:
  estimators: [learned, exact]
  grid:
    mu2: {values: [-0.3, 0.3]}
    rho12: {values: [-0.3, 0.3]}
  n_toys: 40
  toys_per_item: 10
coverage:
  estimators: [learned, exact]
  methods: [wilks, neyman]
  grid:
    mu2: {values: [0.0]}
    rho12: {values: [0.0]}
  n_toys: 40
  toys_per_item: 10
slurm: {launcher: mpirun, array_tasks: 2, time: "00:10:00", signal_seconds: 60}
pipeline: [simulate, train, infer, calibrate, coverage]
YAML

# The reference: the same config run here, one rank (as each SLURM job).
expect_exit 0 run.out -- "$NSBI" run small.yaml --output "$PWD/ref"

expect_exit 0 submit.out -- "$NSBI" submit small.yaml --output "$PWD/sub"
expect_grep "submitting 8 jobs" submit.out
[ "$(job_ids sub | wc -l)" -eq 8 ] || fail "jobs.json does not hold 8 jobs: $(cat sub/slurm/jobs.json)"
wait_campaign sub 150
expect_campaign_complete sub

# The arrays really shared the work out: each task ran its slice, the merge jobs found everything done.
ids=($(job_ids sub))
expect_grep "train .*--members 0/2" "sub/slurm/train-${ids[1]}_0.out"
expect_grep "train: 1 member\(s\) \(slice 1/2 of 2\)" "sub/slurm/train-${ids[1]}_1.out"
expect_grep "train member 0: already trained" "sub/slurm/train-merge-${ids[2]}.out"
expect_grep "slice 1/2: its 8 of 16 work items are done" "sub/slurm/calibrate-${ids[4]}_1.out"
expect_grep "slice 0/2: its 8 of 16 work items are done" "sub/slurm/calibrate-${ids[4]}_0.out"
expect_grep "resuming: 16 of 16 work items already done" "sub/slurm/calibrate-merge-${ids[5]}.out"
expect_grep "resuming: 4 of 4 work items already done" "sub/slurm/coverage-merge-${ids[7]}.out"
[ -d sub/work/calibrate ] && fail "the calibrate merge left its journals"

expect_same_outputs sub ref
expect_grep "compared [0-9]+ datasets in 5 file\(s\): 0 difference" "compare-sub-ref.txt"
# The other launcher: srun with Open MPI's PMIx plugin.
expect_exit 0 submit-srun.out -- "$NSBI" submit small.yaml --output "$PWD/srun" --set slurm.launcher=srun \
  --set slurm.mpi=pmix
wait_campaign srun 150
expect_campaign_complete srun
expect_grep "srun --mpi=pmix .*nsbi simulate" "srun/slurm/simulate-$(job_ids srun | head -1).out"
expect_same_outputs srun ref
expect_grep "compared [0-9]+ datasets in 5 file\(s\): 0 difference" "compare-srun-ref.txt"

# The comparison can fail: one changed value of the merged belts is found.
mkdir -p changed && cp sub/*.h5 changed/
"$PYTHON" -c "import h5py; f = h5py.File('changed/results.h5', 'r+'); d = f['calibrate/exact/q_toys']; d[0, 0] += 1e-12"
"$PYTHON" "$SOURCE_DIR/tests/slurm/compare_outputs.py" changed ref results.h5 >changed.txt 2>&1 &&
  fail "compare_outputs.py did not see a changed value: $(cat changed.txt)"
expect_grep "calibrate/exact/q_toys: values differ" changed.txt
finish
