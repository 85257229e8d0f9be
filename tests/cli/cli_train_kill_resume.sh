#!/usr/bin/env bash
# SIGTERM during `nsbi train` on 2 ranks stops it with exit code 4 and a checkpoint; the same command again
# resumes from it, and the model equals an uninterrupted run's on 2 ranks bit for bit.
source "$(dirname "$0")/common.sh"

# About 3 s of training on 2 cores (3 epochs of 130 steps), a checkpoint every 50 steps.
cat >kill.yaml <<YAML
campaign: {seed: 7, dir: killed}
simulator: {name: gaussian2d}
simulate:
  n_samples: 20000
  block_size: 5000
  reference: {theta: {mu2: 0, rho12: 0}}
train:
  network: {head: {hidden: [512, 512, 512]}}
  batch_size: 256
  epochs: 3
  checkpoint_every: 50
  diagnostics: {grid_points: 2, n_events: 100}
YAML
expect_exit 0 simulate.out -- "$NSBI" simulate kill.yaml
mkdir -p whole && cp killed/dataset.h5 killed/reference.h5 whole/ || fail "the simulation wrote no datasets"

# Start the 2-rank training in the background and wait for its first checkpoint.
"$MPIEXEC" -np 2 --oversubscribe "$NSBI" train kill.yaml >termed.out 2>&1 &
leader=$!
for _ in $(seq 1 1000); do
  [ -e killed/checkpoints/train-member-0.h5 ] && break
  sleep 0.02
done
[ -e killed/checkpoints/train-member-0.h5 ] || fail "no checkpoint appeared: $(cat termed.out)"
# To the ranks (as srun delivers SLURM's signal), not to mpirun, which would turn it into an abort.
pkill -TERM -f "^$NSBI train kill.yaml"
wait "$leader"
code=$?
[ "$code" -eq 4 ] || fail "SIGTERM: exit code $code, expected 4: $(cat termed.out)"
expect_grep "train: stopped by a signal; the checkpoints in 'killed/checkpoints' are saved: run the same" \
  termed.out
[ -e killed/checkpoints/train-member-0.h5 ] || fail "the interrupted run left no checkpoint"
[ ! -e killed/model.h5 ] && [ ! -e killed/model.h5.partial ] || fail "the interrupted run left a model file"

expect_exit 0 resumed.out -- mpi 2 "$NSBI" train kill.yaml
expect_grep "train: resuming from 'killed/checkpoints/train-member-0.h5' at step [0-9]+ of 390" resumed.out
step=$(sed -n 's/.*resuming from .* at step \([0-9]*\) of 390.*/\1/p' resumed.out)
echo "resumed at step ${step:-?} of 390"
[ -n "$step" ] && [ "$step" -ge 50 ] && [ "$step" -lt 390 ] ||
  fail "the SIGTERM did not land mid-run (step '$step')"
[ -e killed/model.h5 ] || fail "the resumed run wrote no model"
[ ! -e killed/checkpoints/train-member-0.h5 ] || fail "the finished run left its checkpoint"
grep -q "\"complete\": *true" killed/train.json || fail "the resumed run wrote no complete train.json"

# The same training without interruption, on the same number of ranks.
expect_exit 0 whole.out -- mpi 2 "$NSBI" train kill.yaml --output whole
grep -q "resuming" whole.out && fail "the uninterrupted run resumed from something"
# Every dataset under /members, /history and /standardization: same names, type, shape and bytes (h5diff
# exits 0 on datasets of different shapes, so it is not used here).
"${PYTHON:-/usr/bin/python3}" - killed/model.h5 whole/model.h5 <<'PY' || fail "the resumed model differs"
import sys
import h5py

def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        for group in ("members", "history", "standardization"):
            f[group].visititems(lambda name, obj: out.__setitem__(f"/{group}/{name}", obj[()])
                                if isinstance(obj, h5py.Dataset) else None)
    return out

a, b = datasets(sys.argv[1]), datasets(sys.argv[2])
if sorted(a) != sorted(b):
    sys.exit(f"different datasets: {sorted(set(a) ^ set(b))}")
bad = [k for k in a
       if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes()]
if bad:
    sys.exit(f"datasets that differ after SIGTERM and resume: {bad}")
print(f"{len(a)} datasets identical")
PY
finish
