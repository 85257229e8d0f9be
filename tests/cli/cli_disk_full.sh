#!/usr/bin/env bash
# A disk that fills up under one rank of 2 (injected by tests/cli/fail_write.c, preloaded: $3) during
# `simulate`, `train` (a checkpoint, then the model) and a toy stage's journals: every rank ends with exit
# code 3 within the timeout (no hang, no crash), the message names "No space left on device" and the file,
# only resumable data is left, and the same command without the fault resumes and completes. Also: a
# truncated checkpoint says to delete it or use --force.
source "$(dirname "$0")/common.sh"
SHIM=${3:?"usage: cli_disk_full.sh NSBI WORK_DIR FAIL_WRITE_LIBRARY"}
# An ASan build needs its runtime first among the preloaded libraries.
ASAN_RUNTIME=$(ldd "$NSBI" | awk '/libasan/ {print $3}')
PRELOAD=${ASAN_RUNTIME:+$ASAN_RUNTIME:}$SHIM

# full SPEC OUT -- nsbi args...: runs nsbi on 2 ranks with writes to files matching SPEC's substring failing
# (NSBI_TEST_FAIL_WRITE, see fail_write.c). Each rank's exit code goes to OUT.rank<r> (mpiexec would stop
# the others at the first non-zero one); a run that hangs is stopped after 60 s.
full() {
  local spec=$1 out=$2
  shift 3
  rm -f "$out".rank*
  timeout 60 "$MPIEXEC" -np 2 --oversubscribe -x LD_PRELOAD="$PRELOAD" -x NSBI_TEST_FAIL_WRITE="$spec" \
    bash -c '"$@"; echo $? >"'"$out"'.rank$OMPI_COMM_WORLD_RANK"' _ "$NSBI" "$@" >"$out" 2>&1
  local code=$?
  [ "$code" -ne 124 ] || fail "'$*' with a full disk ($spec) hung (stopped after 60 s): $(cat "$out")"
  for rank in 0 1; do
    local got
    got=$(cat "$out.rank$rank" 2>/dev/null || echo none)
    [ "$got" = 3 ] || fail "'$*' with a full disk ($spec): rank $rank exited $got, expected 3: $(cat "$out")"
  done
  if grep -qE "Segmentation|signal 11|internal error" "$out"; then fail "'$*' crashed: $(cat "$out")"; fi
  return 0
}

# A dataset of 6 MB written in blocks of 5000 rows, with a checkpoint after every round.
cat >simulate.yaml <<YAML
campaign: {seed: 11, dir: s}
simulator: {name: gaussian2d}
simulate: {n_samples: 200000, block_size: 5000, checkpoint_seconds: 0}
YAML
# simulate: rank 1's write fails after 2 MB.
full "s/dataset.h5.partial:2000000:1" simulate.out -- simulate simulate.yaml
expect_grep "\[rank 1\] nsbi::h5::Dataset::write_rows: cannot write rows .* in 's/dataset.h5.partial': No space left on device" \
  simulate.out
expect_grep "the blocks saved before stay in 's/dataset.h5.partial': run the same command to resume" simulate.out
[ -e s/dataset.h5.partial ] || fail "simulate left no .partial dataset to resume"
[ ! -e s/dataset.h5 ] || fail "simulate left a complete-looking dataset.h5 after a failed write"
expect_exit 0 simulate-resumed.out -- mpi 2 "$NSBI" simulate simulate.yaml
expect_grep "simulate: resuming 's/dataset.h5.partial': [1-9][0-9]* of 200000 rows already done" \
  simulate-resumed.out
# A disk full from the start (rank 0's first write fails): no unreadable .partial is left to stop the rerun.
full "s0/dataset.h5.partial:0:0" create.out -- simulate simulate.yaml --output s0
expect_grep "in 's0/dataset.h5.partial': No space left on device" create.out
[ ! -e s0/dataset.h5.partial ] || fail "a dataset that could not be created left its .partial"
# The resumed dataset is the one an uninterrupted run writes.
expect_exit 0 simulate-whole.out -- "$NSBI" simulate simulate.yaml --output whole
for array in /theta /x; do
  h5diff -q s/dataset.h5 whole/dataset.h5 $array $array >/dev/null 2>&1 || fail "the resumed $array differs"
done

# Two ensemble members, one per rank: 60 steps each, a checkpoint every 20.
cat >train.yaml <<YAML
campaign: {seed: 11, dir: t}
simulator: {name: gaussian2d}
simulate: {n_samples: 20000, reference: {theta: {mu2: 0, rho12: 0}}}
train:
  network: {head: {hidden: [32, 32]}}
  max_steps: 60
  checkpoint_every: 20
  ensemble: 2
  diagnostics: {grid_points: 2, n_events: 100}
test:
  h0: {mu2: 0, rho12: 0}
  h1: {mu2: 0.5, rho12: 0}
  n_events: 20
  n_toys: 40
  toys_per_item: 5
YAML
expect_exit 0 train-simulate.out -- "$NSBI" simulate train.yaml
cp -r t measured
# The size of one checkpoint: member 1's finished one, trained alone.
expect_exit 0 measure.out -- "$NSBI" train train.yaml --output measured --members 1/2
size=$(stat -c %s measured/checkpoints/train-member-1.h5) || fail "no checkpoint to measure: $(cat measure.out)"
# train: rank 0 (member 0) fails in its second checkpoint; the first one is kept, the unfinished one removed.
full "t/checkpoints/train-member-0.h5.partial:$((size * 3 / 2)):0" train.out -- train train.yaml
expect_grep "cannot .* in 't/checkpoints/train-member-0.h5.partial': No space left on device" train.out
expect_grep "the previous checkpoint 't/checkpoints/train-member-0.h5' \(if any\) is unchanged: run the same" \
  train.out
[ -e t/checkpoints/train-member-0.h5 ] || fail "train kept no checkpoint"
[ ! -e t/checkpoints/train-member-0.h5.partial ] || fail "train left its unfinished checkpoint"
[ ! -e t/model.h5 ] && [ ! -e t/model.h5.partial ] || fail "train left a model file"
# A truncated checkpoint names itself, HDF5's reason and what to do.
cp t/checkpoints/train-member-0.h5 saved.h5
truncate -s $(($(stat -c %s saved.h5) / 2)) t/checkpoints/train-member-0.h5
expect_exit 3 truncated.out -- "$NSBI" train train.yaml
expect_grep "nsbi::read_checkpoint: 't/checkpoints/train-member-0.h5' cannot be read \(.*truncated file.*\); delete it \(or run with --force\) to start the training over" \
  truncated.out
cp saved.h5 t/checkpoints/train-member-0.h5
# The model cannot be written: the finished checkpoints stay, the model's .partial goes.
full "t/model.h5.partial:0:0" model.out -- train train.yaml
expect_grep "train member 0: resuming from 't/checkpoints/train-member-0.h5' at step [1-9]" model.out
expect_grep "in 't/model.h5.partial': No space left on device.*; the finished checkpoints in 't/checkpoints' are kept: run the same command to write the model" \
  model.out
[ ! -e t/model.h5 ] && [ ! -e t/model.h5.partial ] || fail "a failed model write left a model file"
expect_exit 0 train-resumed.out -- mpi 2 "$NSBI" train train.yaml
expect_grep "already trained \(t/checkpoints/train-member-0.h5\)" train-resumed.out
[ -e t/model.h5 ] || fail "the rerun wrote no model"

# A toy stage: rank 1's work journal fills the disk after its first records; the journals resume.
full ".journal:100:1" test.out -- test train.yaml
expect_grep "cannot write the work journal '.*rank1.journal': No space left on device" test.out
expect_grep "the items journaled before are kept: run the same command to resume" test.out
[ ! -e t/results.h5 ] || fail "the failed test stage wrote results"
# Then results.h5 cannot be written: no results file is left, the journals stay.
full "t/results.h5.partial:0:0" results.out -- test train.yaml
expect_grep "test: resuming: [1-9][0-9]* of [0-9]+ work items already done" results.out
expect_grep "in 't/results.h5.partial': No space left on device" results.out
[ ! -e t/results.h5 ] && [ ! -e t/results.h5.partial ] || fail "a failed results write left a results file"
expect_exit 0 test-resumed.out -- mpi 2 "$NSBI" test train.yaml
expect_grep "test: resuming: [0-9]+ of [0-9]+ work items already done" test-resumed.out
[ -e t/results.h5 ] || fail "the resumed test stage wrote no results"
finish
