#!/usr/bin/env bash
# infer with posterior: mcmc on a tiny gaussian2d campaign: the samples and diagnostics in results.h5 and
# infer.json without any grid array, the same bits on 1 and 2 ranks (learned and exact estimators), a
# parameter held fixed by a single grid value, the chains' seed recorded, a normal prior giving the grid's
# posterior, and the refusals of bad settings.
source "$(dirname "$0")/common.sh"

cat >small.yaml <<YAML
campaign: {seed: 5, dir: run}
simulator: {name: gaussian2d}
simulate:
  n_samples: 4000
  reference: {theta: {mu2: 0, rho12: 0}}
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
train:
  network: {head: {hidden: [8], activation: silu}}
  epochs: 1
  diagnostics: {grid_points: 2, n_events: 100}
infer:
  estimators: [learned, exact]
  grid:
    mu2: {min: -0.9, max: 0.9}
    rho12: {min: -0.9, max: 0.9}
  posterior: mcmc
  mcmc: {chains: 5, warmup: 50, samples: 100}
YAML

expect_exit 0 simulate.out -- "$NSBI" simulate small.yaml
expect_exit 0 train.out -- "$NSBI" train small.yaml
expect_exit 0 infer1.out -- "$NSBI" infer small.yaml
expect_grep "infer: mcmc \(exact\): 5 chains × 100 draws" infer1.out
expect_grep "largest R̂" infer1.out
expect_grep '"method": "mcmc"' run/infer.json
expect_grep '"rhat": ' run/infer.json
expect_grep '"ess_bulk": ' run/infer.json
expect_grep '"seed": 5' run/infer.json
h5dump -A -g /infer run/results.h5 >attributes.txt 2>&1
expect_grep '"mcmc"' attributes.txt
for estimator in learned exact; do
  h5ls run/results.h5/infer/$estimator >ls_$estimator.txt 2>&1
  expect_grep "posterior_samples +Dataset \{500, 2\}" ls_$estimator.txt
  expect_grep "log_posterior +Dataset \{500\}" ls_$estimator.txt
  expect_grep "rhat +Dataset \{2\}" ls_$estimator.txt
  expect_grep "ess_bulk +Dataset \{2\}" ls_$estimator.txt
  grep -qE "^(t|q|posterior|poi_q) " ls_$estimator.txt && fail "grid arrays written with posterior: mcmc"
done
cp run/results.h5 one_rank.h5
# The same bits on 2 ranks (chains 0-2 on rank 0, 3-4 on rank 1).
expect_exit 0 infer2.out -- mpi 2 "$NSBI" infer small.yaml --force
for estimator in learned exact; do
  for array in posterior_samples log_posterior rhat ess_bulk; do
    h5same one_rank.h5 run/results.h5 /infer/$estimator/$array
  done
done
# A second run skips the stage; another seed gives other samples.
expect_exit 0 rerun.out -- "$NSBI" infer small.yaml
expect_grep "infer: complete for this config: nothing to do" rerun.out
sed 's/samples: 100}/samples: 100, seed: 77}/' small.yaml >seeded.yaml
expect_exit 0 seeded.out -- "$NSBI" infer seeded.yaml --force
expect_grep '"seed": 77' run/infer.json
h5diff -q one_rank.h5 run/results.h5 /infer/exact/posterior_samples /infer/exact/posterior_samples \
  >/dev/null 2>&1 && fail "infer.mcmc.seed did not change the samples"
# rho12 held at one value: its column is that value.
sed 's/rho12: {min: -0.9, max: 0.9}/rho12: {values: [0.4]}/' small.yaml >fixed.yaml
expect_exit 0 fixed.out -- "$NSBI" infer fixed.yaml --force
/usr/bin/python3 - <<'PY' || fail "rho12 was not held at 0.4"
import h5py, numpy
samples = h5py.File("run/results.h5", "r")["infer/exact/posterior_samples"][...]
assert numpy.all(samples[:, 1] == 0.4) and samples[:, 0].std() > 0, samples[:5]
PY
# A normal prior on mu2 (exact estimator): the MCMC moments agree with the grid posterior's under the same
# prior, within 4 Monte-Carlo standard errors (sd/√ESS for the mean, sd/√(2 ESS) for the sd) plus a 1 % of sd
# allowance for the 121² grid's discretisation. (Without the prior mu2's sd would be about 0.21, not 0.14.)
cat >prior.yaml <<YAML
campaign: {seed: 5, dir: run}
simulator: {name: gaussian2d}
simulate:
  n_samples: 4000
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
prior:
  mu2: {kind: normal, mean: 0, sd: 0.2}
infer:
  estimators: [exact]
  grid:
    mu2: {min: -0.9, max: 0.9, points: 121}
    rho12: {min: -0.9, max: 0.9, points: 121}
YAML
expect_exit 0 prior_grid.out -- "$NSBI" infer prior.yaml --force
cp run/infer.json grid.json
# A config that names neither infer.posterior nor infer.mcmc resolves as before they existed (its identity,
# and so whether a finished infer is skipped, is unchanged).
h5dump -a /infer/identity run/results.h5 2>/dev/null | grep -E "mcmc|posterior: grid" >/dev/null &&
  fail "the grid's identity names the mcmc keys"
cp prior.yaml prior_mcmc.yaml
printf '  posterior: mcmc\n  mcmc: {chains: 8, warmup: 100, samples: 300}\n' >>prior_mcmc.yaml
expect_exit 0 prior_mcmc.out -- "$NSBI" infer prior_mcmc.yaml --force
expect_grep "kind: normal" <(h5dump -A -g /infer run/results.h5 2>/dev/null)
/usr/bin/python3 - <<'PY' || fail "the MCMC posterior under a normal prior disagrees with the grid's"
import json, math
grid = json.load(open("grid.json"))["results_by_estimator"]["exact"]["posterior"]
mcmc = json.load(open("run/infer.json"))["results_by_estimator"]["exact"]["posterior"]["parameters"]
for name in ("mu2", "rho12"):
    g, m = grid[name], mcmc[name]
    ess, sd = m["ess_bulk"], g["std"]
    assert m["rhat"] <= 1.01 and ess >= 400, (name, m)
    assert abs(m["mean"] - g["mean"]) <= 4 * sd / math.sqrt(ess) + 0.01 * sd, (name, g, m)
    assert abs(m["std"] - sd) <= 4 * sd / math.sqrt(2 * ess) + 0.01 * sd, (name, g, m)
PY
# Refusals naming the key.
sed 's/rho12: {min: -0.9, max: 0.9}/rho12: {values: [0.4]}/; s/mu2: {min: -0.9, max: 0.9}/mu2: {values: [0.3]}/' \
  small.yaml >allfixed.yaml
expect_exit 2 allfixed.out -- "$NSBI" infer allfixed.yaml --force
expect_grep "infer.posterior.*nothing to sample" allfixed.out
sed 's/posterior: mcmc/posterior: hmc/' small.yaml >badkind.yaml
expect_exit 2 badkind.out -- "$NSBI" infer badkind.yaml --force
expect_grep "infer.posterior" badkind.out
sed 's/samples: 100}/samples: 2}/' small.yaml >fewsamples.yaml
expect_exit 2 fewsamples.out -- "$NSBI" infer fewsamples.yaml --force
expect_grep "infer.mcmc.samples" fewsamples.out
finish
