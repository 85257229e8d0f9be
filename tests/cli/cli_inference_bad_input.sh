#!/usr/bin/env bash
# Bad input to the inference stages stops them with a clear message and exit code 2 (config) or 3 (data):
# observed data with a wrong, missing or duplicated column, or a NaN; no observed events; a model trained for
# another simulator; a θ grid beyond the model's training range (unless --allow-extrapolation); the exact
# estimator where the simulator has no exact likelihood.
source "$(dirname "$0")/common.sh"

cat >g.yaml <<YAML
campaign: {seed: 5, dir: g}
simulator: {name: gaussian2d}
simulate:
  n_samples: 5000
  proposal: {mu2: {kind: uniform, min: -0.5, max: 0.5}, rho12: {kind: uniform, min: -0.5, max: 0.5}}
  reference: {theta: {mu2: 0, rho12: 0}}
train: {network: {head: {hidden: [8]}}, epochs: 1, diagnostics: {grid_points: 2, n_events: 100}}
infer:
  observed: obs.csv
  grid: {mu2: {points: 5}, rho12: {points: 5}}
YAML
expect_exit 0 sim.out -- "$NSBI" simulate g.yaml
expect_exit 0 train.out -- "$NSBI" train g.yaml

printf 'x1,x2\n0.1,0.2\n-0.3,0.5\n' >g/obs.csv
expect_exit 0 good.out -- "$NSBI" infer g.yaml
printf 'x2,x1\n0.2,0.1\n0.5,-0.3\n' >g/obs.csv
expect_exit 0 reordered.out -- "$NSBI" infer g.yaml --force

printf 'x1,y\n0.1,0.2\n' >g/obs.csv
expect_exit 3 wrong.out -- "$NSBI" infer g.yaml
expect_grep "observed data 'g/obs.csv', line 1: column 'y' is not an observable of gaussian2d \(expected x1, x2\)" wrong.out
printf 'x1\n0.1\n' >g/obs.csv
expect_exit 3 missing.out -- "$NSBI" infer g.yaml
expect_grep "the observable 'x2' of gaussian2d has no column" missing.out
printf 'x1,x2,x1\n0.1,0.2,0.3\n' >g/obs.csv
expect_exit 3 twice.out -- "$NSBI" infer g.yaml
expect_grep "column 'x1' appears twice" twice.out
printf 'x1,x2\n0.1,0.2\n0.3,nan\n' >g/obs.csv
expect_exit 3 nan.out -- "$NSBI" infer g.yaml
expect_grep "line 3, column 'x2': nan is not finite" nan.out
printf 'x1,x2\n0.1,zero\n' >g/obs.csv
expect_exit 3 text.out -- "$NSBI" infer g.yaml
expect_grep "line 2, column 'x2': 'zero' is not a number" text.out
printf 'x1,x2\n' >g/obs.csv
expect_exit 3 empty.out -- "$NSBI" infer g.yaml
expect_grep "holds no events" empty.out
rm g/obs.csv
expect_exit 3 absent.out -- "$NSBI" infer g.yaml
expect_grep "observed data 'g/obs.csv' cannot be read" absent.out

# Beyond the training range ([-0.5, 0.5]): refused, unless --allow-extrapolation.
printf 'x1,x2\n0.1,0.2\n' >g/obs.csv
expect_exit 2 outside.out -- "$NSBI" infer g.yaml --set infer.grid.mu2.max=0.8
expect_grep "infer.grid.mu2.max: mu2 = 0.8 is outside the model's training range \[-0.5, 0.5\]" outside.out
expect_grep "allow-extrapolation" outside.out
expect_exit 0 allowed.out -- "$NSBI" infer g.yaml --set infer.grid.mu2.max=0.8 --allow-extrapolation --force
expect_exit 2 domain.out -- "$NSBI" infer g.yaml --set infer.grid.rho12.max=1.5 --allow-extrapolation
expect_grep "rho12 = 1.5 is outside the domain" domain.out

# A model trained for spin3d, given to the gaussian2d campaign.
cat >s.yaml <<YAML
campaign: {seed: 5, dir: s}
simulator: {name: spin3d}
simulate: {n_samples: 2000, reference: {theta: {spin: 0}}}
train: {network: {head: {hidden: [8]}}, epochs: 1, diagnostics: {grid_points: 2, n_events: 100}}
YAML
expect_exit 0 ssim.out -- "$NSBI" simulate s.yaml
expect_exit 0 strain.out -- "$NSBI" train s.yaml
expect_exit 3 foreign.out -- "$NSBI" infer g.yaml --set infer.model=../s/model.h5
expect_grep "model 'g/../s/model.h5' was trained for simulator 'spin3d', but this campaign's simulator is 'gaussian2d'" \
  foreign.out

# lepton has no exact likelihood in the mass.
cat >l.yaml <<YAML
campaign: {seed: 5, dir: l}
simulator: {name: lepton}
infer: {estimators: [exact], observed: obs.csv, grid: {m: {points: 3}, spin: {values: [0]}}}
YAML
mkdir -p l && printf 'muon_pt,muon_eta,muon_phi,MET,MET_phi\n100,0.1,0.2,80,-2.9\n' >l/obs.csv
expect_exit 2 exact.out -- "$NSBI" infer l.yaml
expect_grep "the .exact. estimator cannot be used here: lepton's likelihood is exact only in the spin" exact.out
finish
