#!/usr/bin/env bash
# Real SLURM, test 2: preemption. A campaign submitted with `nsbi submit` is interrupted twice mid-stage:
#   - train's array task 0 gets the time-limit warning (SIGUSR1 to the batch shell, as --signal=B:USR1 sends
#     it): nsbi checkpoints and exits with code 4, and the job requeues itself (scontrol requeue);
#   - calibrate, here one job (slurm.stages.calibrate.array_tasks: 1), is requeued by SLURM (scontrol
#     requeue, as preemption does): SIGTERM, its finished work items stay journaled.
# Both resume where they stopped, and every array of the outputs is bit for bit what `nsbi run` gives.
source "$(dirname "$0")/slurm_common.sh"

# Long enough stages (a few seconds per array task) to be caught running.
cat >long.yaml <<YAML
campaign: {name: requeuetest, seed: 5, dir: unused}
simulator: {name: gaussian2d}
simulate:
  n_samples: 20000
  reference: {theta: {mu2: 0, rho12: 0}}
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
train:
  network: {head: {hidden: [16, 16], activation: silu}}
  epochs: 400
  early_stopping_patience: 0
  checkpoint_every: 100
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
  n_toys: 20000
  toys_per_item: 250
coverage:
  estimators: [exact]
  methods: [wilks]
  grid:
    mu2: {values: [0.0]}
    rho12: {values: [0.0]}
  n_toys: 40
  toys_per_item: 10
slurm: {launcher: mpirun, array_tasks: 2, time: "00:10:00", signal_seconds: 60,
        stages: {calibrate: {array_tasks: 1}}}
pipeline: [simulate, train, infer, calibrate, coverage]
YAML

expect_exit 0 run.out -- "$NSBI" run long.yaml --output "$PWD/ref"

expect_exit 0 submit.out -- "$NSBI" submit long.yaml --output "$PWD/sub"
ids=($(job_ids sub))
[ "${#ids[@]}" -eq 7 ] || fail "jobs.json does not hold 7 jobs: $(cat sub/slurm/jobs.json)"
train=${ids[1]}
calibrate=${ids[4]}

# until TIMEOUT_S CONDITION...: polls the condition every 0.1 s (releasing requeued jobs meanwhile).
until_true() {
  local timeout=$1 i
  shift
  for ((i = 0; i < timeout * 10; i++)); do
    "$@" && return 0
    ((i % 10 == 0)) && release_requeued sub
    sleep 0.1
  done
  return 1
}
task_running() { [ "$(squeue -h -j "$1" -o %T 2>/dev/null)" = "RUNNING" ]; }
checkpointed() { task_running "${train}_0" && [ -f sub/checkpoints/train-member-0.h5 ]; }
# nsbi status counts the journaled work items: wait for some, well before the stage's end, and for task 1's
# own journal (created with its first finished item; one record is 4024 bytes here).
items_journaled() {
  task_running "${calibrate}" || return 1
  local journal
  journal=$(ls sub/work/calibrate/*-rank0.journal 2>/dev/null | head -1)
  [ -n "$journal" ] && [ "$(stat -c %s "$journal")" -gt 4100 ] || return 1
  "$NSBI" status sub --json >status.json 2>&1 || return 1
  local done
  done=$(grep -o '"stage": "calibrate", "state": "[a-z]*", "done": [0-9]*' status.json | grep -o '[0-9]*$')
  [ "${done:-0}" -ge 20 ]
}

if until_true 120 checkpointed; then
  # What SLURM sends signal_seconds before the time limit (--signal=B:USR1): to the batch shell only.
  scancel --batch --signal=USR1 "${train}_0" || fail "scancel --signal=USR1 ${train}_0 failed"
else
  fail "train's array task ${train}_0 was not seen running with a checkpoint"
fi
if until_true 120 items_journaled; then
  scontrol requeue "${calibrate}" || fail "scontrol requeue ${calibrate} failed"
else
  fail "calibrate's job ${calibrate} was not seen running with journaled items: $(cat status.json)"
fi
wait_campaign sub 300
expect_campaign_complete sub

# The warning signal: checkpoint, exit 4, the job requeued itself and resumed from the checkpoint.
log=sub/slurm/train-${train}_0.out
expect_grep "nsbi exited with code 4" "$log"
expect_grep "job [0-9]+ \(restart 1\)" "$log"
expect_grep "train member 0: resuming from '.*train-member-0.h5' at step [1-9]" "$log"
# The requeue: the second run found the first run's work items.
log=sub/slurm/calibrate-${calibrate}.out
expect_grep "job [0-9]+ \(restart 1\)" "$log"
expect_grep "calibrate: resuming: [1-9][0-9]* of 320 work items already done" "$log"

expect_same_outputs sub ref
expect_grep "compared [0-9]+ datasets in 5 file\(s\): 0 difference" "compare-sub-ref.txt"
finish
