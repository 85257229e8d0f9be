#!/usr/bin/env bash
# SIGKILL during `nsbi simulate` on 2 ranks, then the same command again: the result equals an uninterrupted
# run bit for bit, and the resumed run did not redo the blocks the killed one finished.
source "$(dirname "$0")/common.sh"

cat >kill.yaml <<YAML
campaign: {seed: 5, dir: killed}
simulator: {name: lepton}
simulate: {n_samples: 10000000, block_size: 20000, checkpoint_seconds: 0.2}
YAML
expect_exit 0 whole.out -- mpi 2 "$NSBI" simulate kill.yaml --output whole

start_and_wait kill.yaml killed  # returns well before the 500 blocks are all in
kill_all "nsbi simulate kill.yaml"
done_at_kill=$(blocks_done killed)
echo "killed with $done_at_kill of 500 blocks recorded"
[ "$done_at_kill" -ge 4 ] && [ "$done_at_kill" -lt 500 ] || fail "the kill did not land mid-run ($done_at_kill blocks)"
[ -e killed/dataset.h5.partial ] || fail "no partial file after the kill"
[ ! -e killed/dataset.h5 ] || fail "the killed run left a file that looks complete"

expect_exit 0 resumed.out -- mpi 2 "$NSBI" simulate kill.yaml
expect_grep "resuming .*: $((done_at_kill * 20000)) of 10000000 rows already done" resumed.out
for d in theta x; do
  h5diff -q whole/dataset.h5 killed/dataset.h5 "/$d" "/$d" || fail "/$d differs after kill and resume"
done
[ ! -e killed/dataset.h5.partial ] || fail "the partial file is still there"

# SIGTERM (SLURM preemption) stops at the next block boundary with exit code 4, and the run resumes.
sed 's/dir: killed/dir: termed/' kill.yaml >term.yaml
start_and_wait term.yaml termed
# To the ranks (as srun delivers SLURM's signal), not to mpirun, which would turn it into an abort.
pkill -TERM -f "^$NSBI simulate term.yaml"
wait "$leader"
code=$?
[ "$code" -eq 4 ] || fail "SIGTERM: exit code $code, expected 4: $(cat termed.out)"
expect_grep "stopped by a signal after [0-9]+ of 10000000 rows of '[^']*'; every finished block is saved" termed.out
expect_exit 0 termed2.out -- mpi 2 "$NSBI" simulate term.yaml
for d in theta x; do
  h5diff -q whole/dataset.h5 termed/dataset.h5 "/$d" "/$d" || fail "/$d differs after SIGTERM and resume"
done
finish
