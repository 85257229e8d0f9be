#!/usr/bin/env bash
# A signal is honoured in every long loop: SIGTERM during train's diagnostics (made long by
# train.diagnostics.n_events) stops `nsbi train` on 2 ranks with exit 4 at once, keeps the trained checkpoint,
# and the next run (with fewer diagnostic events: they are not part of the model's identity) computes the
# diagnostics and writes the model without training again. The same during their held-out pass (made long by
# grid_points over many held-out rows).
source "$(dirname "$0")/common.sh"

cat >sig.yaml <<YAML
campaign: {seed: 9, dir: sig}
simulator: {name: gaussian2d}
simulate:
  n_samples: 4000
  reference: {theta: {mu2: 0, rho12: 0}}
train:
  network: {head: {hidden: [8]}}
  epochs: 1
  diagnostics: {grid_points: 2, n_events: 1000000000}
YAML
expect_exit 0 simulate.out -- "$NSBI" simulate sig.yaml

"$MPIEXEC" -np 2 --oversubscribe "$NSBI" train sig.yaml >termed.out 2>&1 &
leader=$!
for _ in $(seq 1 1800); do
  grep -q "train: diagnostics" termed.out && break
  sleep 0.05
done
grep -q "train: diagnostics" termed.out || fail "the diagnostics did not start: $(cat termed.out)"
sleep 0.5
# To the ranks (as srun delivers SLURM's signal), not to mpirun, which would turn it into an abort.
pkill -TERM -f "^$NSBI train sig.yaml"
# Within one block of 16384 events (milliseconds); 15 s leave room for a loaded machine.
for _ in $(seq 1 300); do
  kill -0 "$leader" 2>/dev/null || break
  sleep 0.05
done
if kill -0 "$leader" 2>/dev/null; then
  fail "SIGTERM during the diagnostics: still running 15 s later: $(cat termed.out)"
  pkill -KILL -f "^$NSBI train sig.yaml"
fi
wait "$leader"
code=$?
[ "$code" -eq 4 ] || fail "SIGTERM during the diagnostics: exit code $code, expected 4: $(cat termed.out)"
expect_grep "train: stopped by a signal during the diagnostics; the trained members are saved" termed.out
[ -e sig/checkpoints/train-member-0.h5 ] || fail "the interrupted run left no checkpoint"
[ ! -e sig/model.h5 ] || fail "the interrupted run wrote a model"

expect_exit 0 rerun.out -- mpi 2 "$NSBI" train sig.yaml --set train.diagnostics.n_events=100
expect_grep "train: already trained" rerun.out
[ -e sig/model.h5 ] || fail "the rerun wrote no model"

# The held-out pass of the diagnostics (E[r̂] on 64 x 64 grid points over 100 000 held-out rows: minutes):
# SIGTERM stops it at once too.
cat >pass.yaml <<YAML
campaign: {seed: 9, dir: pass}
simulator: {name: gaussian2d}
simulate: {n_samples: 1000000}
train:
  reference: marginal
  network: {head: {hidden: [8]}}
  max_steps: 2
  diagnostics: {grid_points: 64, n_events: 1000000}
YAML
expect_exit 0 simulate_pass.out -- "$NSBI" simulate pass.yaml
"$NSBI" train pass.yaml >pass.out 2>&1 &
leader=$!
for _ in $(seq 1 1800); do
  grep -q "train: diagnostics" pass.out && break
  sleep 0.05
done
grep -q "train: diagnostics" pass.out || fail "the diagnostics did not start: $(cat pass.out)"
sleep 0.5
kill -TERM "$leader"
for _ in $(seq 1 300); do
  kill -0 "$leader" 2>/dev/null || break
  sleep 0.05
done
if kill -0 "$leader" 2>/dev/null; then
  fail "SIGTERM during the held-out pass: still running 15 s later: $(cat pass.out)"
  kill -KILL "$leader"
fi
wait "$leader"
code=$?
[ "$code" -eq 4 ] || fail "SIGTERM during the held-out pass: exit code $code, expected 4: $(cat pass.out)"
expect_grep "train: stopped by a signal during the diagnostics" pass.out
finish
