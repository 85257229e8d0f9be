#!/usr/bin/env bash
# A real full disk: the campaign directory on a small tmpfs. `simulate` on 2 ranks (a 20 MiB file system for a
# 64 MB dataset) and `train` on 2 ranks (room for one checkpoint, not two) end with exit code 3 on every rank
# within the timeout (no hang, no crash), naming "No space left on device", the file and the mount point; once
# the file system is made larger the same commands resume and complete. Needs root (mount): skipped otherwise.
source "$(dirname "$0")/common.sh"
skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
mkdir -p full
mount -t tmpfs -o size=20m nsbi-test-full "$WORK/full" 2>mount.err || skip "cannot mount a tmpfs: $(cat mount.err)"
trap 'umount "$WORK/full"' EXIT

# run2 OUT -- nsbi args...: 2 ranks, each rank's exit code in OUT.rank<r>; stopped after 60 s if it hangs.
run2() {
  local out=$1
  shift 2
  rm -f "$out".rank*
  timeout 60 "$MPIEXEC" -np 2 --oversubscribe \
    bash -c '"$@"; echo $? >"'"$out"'.rank$OMPI_COMM_WORLD_RANK"' _ "$NSBI" "$@" >"$out" 2>&1
  [ $? -ne 124 ] || fail "'$*' hung on a full disk (stopped after 60 s): $(cat "$out")"
}
expect_ranks() {
  local want=$1 out=$2
  for rank in 0 1; do
    local got
    got=$(cat "$out.rank$rank" 2>/dev/null || echo none)
    [ "$got" = "$want" ] || fail "$out: rank $rank exited $got, expected $want: $(cat "$out")"
  done
  if grep -qE "Segmentation|signal 11|internal error" "$out"; then fail "$out: a crash: $(cat "$out")"; fi
  return 0
}

cat >simulate.yaml <<YAML
campaign: {seed: 5, dir: full/s}
simulator: {name: gaussian2d}
simulate: {n_samples: 2000000, checkpoint_seconds: 0}
YAML
run2 simulate.out -- simulate simulate.yaml
expect_ranks 3 simulate.out
expect_grep "cannot write rows .* in 'full/s/dataset.h5.partial': No space left on device \(the file system mounted at '$WORK/full' has [0-9.]+ [KM]?i?B of 20.0 MiB free\)" \
  simulate.out
[ -e full/s/dataset.h5.partial ] && [ ! -e full/s/dataset.h5 ] || fail "simulate left other than its .partial"
mount -o remount,size=200m "$WORK/full" || fail "cannot grow the tmpfs"
run2 simulate-resumed.out -- simulate simulate.yaml
expect_ranks 0 simulate-resumed.out
expect_grep "simulate: resuming 'full/s/dataset.h5.partial': [1-9][0-9]* of 2000000 rows already done" \
  simulate-resumed.out
rm -rf full/s

# train: the file system holds the datasets, one checkpoint and half of another (sized from a checkpoint of
# the same network written elsewhere).
cat >train.yaml <<YAML
campaign: {seed: 5, dir: full/t}
simulator: {name: gaussian2d}
simulate: {n_samples: 20000, reference: {theta: {mu2: 0, rho12: 0}}}
train:
  network: {head: {hidden: [256, 256]}}
  max_steps: 60
  checkpoint_every: 20
  diagnostics: {grid_points: 2, n_events: 100}
YAML
expect_exit 0 measure-simulate.out -- "$NSBI" simulate train.yaml --output measured
expect_exit 0 measure.out -- "$NSBI" train train.yaml --output measured --set train.ensemble=2 --members 1/2
checkpoint=$(stat -c %s measured/checkpoints/train-member-1.h5) || fail "no checkpoint to measure"
umount "$WORK/full" && mount -t tmpfs -o size=200m nsbi-test-full "$WORK/full" || fail "cannot remount the tmpfs"
expect_exit 0 train-simulate.out -- "$NSBI" simulate train.yaml
data=$(du -sb full | cut -f1)
mount -o remount,size=$((data + checkpoint * 3 / 2 + 65536)) "$WORK/full" || fail "cannot shrink the tmpfs"
run2 train.out -- train train.yaml
expect_ranks 3 train.out
expect_grep "in 'full/t/checkpoints/train-member-0.h5.partial': No space left on device \(the file system mounted at '$WORK/full'" \
  train.out
[ -e full/t/checkpoints/train-member-0.h5 ] || fail "train kept no checkpoint: $(cat train.out)"
[ ! -e full/t/checkpoints/train-member-0.h5.partial ] || fail "train left its unfinished checkpoint"
mount -o remount,size=200m "$WORK/full" || fail "cannot grow the tmpfs"
run2 train-resumed.out -- train train.yaml
expect_ranks 0 train-resumed.out
expect_grep "train: resuming from 'full/t/checkpoints/train-member-0.h5' at step [1-9]" train-resumed.out
[ -e full/t/model.h5 ] || fail "the resumed training wrote no model"
finish
