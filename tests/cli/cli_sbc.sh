#!/usr/bin/env bash
# The posterior checks of coverage (methods sbc and expected_coverage) on gaussian2d with its exact estimator
# (whose posterior is the true one): the rank histograms pass the χ² test and the HPD regions cover as
# nominal, by Markov chains and by the grid; the same bits on 1 and 2 ranks; a run interrupted by SIGTERM
# resumes from its journaled work items to the same bits; a complete stage is skipped; the toy methods run
# beside the checks; the report plots them; and the refusals of bad settings name their key.
source "$(dirname "$0")/common.sh"
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)

cat >sbc.yaml <<YAML
campaign: {seed: 9, dir: run}
simulator: {name: gaussian2d}
simulate:
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
prior:
  mu2: {kind: uniform, min: -0.9, max: 0.9}
  rho12: {kind: uniform, min: -0.9, max: 0.9}
infer:
  estimators: [exact]
  posterior: mcmc
  grid:
    mu2: {min: -0.9, max: 0.9, points: 61}
    rho12: {min: -0.9, max: 0.9, points: 61}
coverage:
  estimators: [exact]
  methods: [sbc, expected_coverage]
  sbc: {runs: 300, runs_per_item: 10, samples: 99, bins: 10, chains: 3, warmup: 100, thin: 5}
YAML

# The exact posterior is calibrated: each parameter's rank histogram is uniform by the χ² test (p ≥ 1e-3,
# which a calibrated sampler fails with probability 1e-3 per parameter; the seed is fixed), and the HPD
# regions' coverage is within 3.5 binomial standard errors √(level (1 − level) / runs) of every nominal level
# (a calibrated posterior exceeds that at one of the ten levels with probability below 10 × 4.7e-4).
check_calibrated() {
  /usr/bin/python3 - "$1" <<'PY' || fail "$1: the exact posterior failed the posterior checks"
import json, sys
body = json.load(open(sys.argv[1]))
entry = body["results_by_estimator"]["exact"]
for name in ("mu2", "rho12"):
    p = entry["sbc"]["parameters"][name]
    assert p["p_value"] >= 1e-3 and p["uniform"] and sum(p["histogram"]) == 300, (name, p)
assert entry["sbc"]["uniform"], entry["sbc"]
points = entry["expected_coverage"]["points"]
assert len(points) == 10, points
for p in points:
    level = p["level"]
    assert abs(p["coverage"] - level) <= 3.5 * (level * (1 - level) / 300) ** 0.5, p
PY
}

expect_exit 0 mcmc1.out -- "$NSBI" coverage sbc.yaml
expect_grep "coverage: 300 runs of θ\* from the prior, 20 events and 99 posterior samples \(mcmc\)" mcmc1.out
check_calibrated run/coverage.json
expect_grep '"posterior": "mcmc"' run/coverage.json
h5ls -r run/results.h5/coverage >ls.txt 2>&1
for line in "theta_true +Dataset \{300, 2\}" "exact/sbc/ranks +Dataset \{300, 2\}" \
  "exact/sbc/histogram +Dataset \{2, 10\}" "exact/expected_coverage/credibility +Dataset \{300\}" \
  "exact/expected_coverage/covered +Dataset \{10\}"; do
  expect_grep "$line" ls.txt
done
[ -d run/work/coverage_sbc ] && fail "coverage left its journals after completing"
cp run/results.h5 mcmc_one.h5
# The report draws the rank histograms and the expected-coverage curve.
if /usr/bin/python3 -c "import matplotlib, h5py" 2>/dev/null; then
  expect_exit 0 report.out -- /usr/bin/python3 "$SOURCE_DIR/scripts/plot_report.py" run
  [ -s run/report/sbc_ranks.png ] && [ -s run/report/expected_coverage.png ] ||
    fail "plot_report.py drew no rank histogram or expected-coverage curve"
fi
expect_exit 0 rerun.out -- "$NSBI" coverage sbc.yaml
expect_grep "coverage: complete for this config: nothing to do" rerun.out

# 2 ranks: the same bits.
arrays=(/coverage/theta_true /coverage/exact/sbc/ranks /coverage/exact/expected_coverage/credibility)
expect_exit 0 mcmc2.out -- mpi 2 "$NSBI" coverage sbc.yaml --force
for path in "${arrays[@]}"; do h5same mcmc_one.h5 run/results.h5 "$path"; done

# The grid posterior (1 and 2 ranks), with the toys of wilks beside the checks.
sed 's/  posterior: mcmc//; s/methods: \[sbc, expected_coverage\]/methods: [wilks, sbc, expected_coverage]\n  grid: {mu2: {values: [0.3]}, rho12: {values: [0.0]}}\n  n_toys: 20\n  n_events: 20/' \
  sbc.yaml >grid.yaml
expect_exit 0 grid1.out -- "$NSBI" coverage grid.yaml --force
expect_grep "\(grid\)" grid1.out
check_calibrated run/coverage.json
expect_grep '"wilks": \{' run/coverage.json
cp run/results.h5 grid_one.h5
expect_exit 0 grid2.out -- mpi 2 "$NSBI" coverage grid.yaml --force
for path in "${arrays[@]}" /coverage/exact/q_toys; do h5same grid_one.h5 run/results.h5 "$path"; done
h5same mcmc_one.h5 run/results.h5 /coverage/theta_true  # θ* does not depend on the posterior's method

# SIGTERM halfway through a 2-rank run with more runs, then resume: the same bits as an uninterrupted run.
big=(--set coverage.sbc.runs=600 --set coverage.sbc.runs_per_item=5)
mkdir -p whole
expect_exit 0 whole.out -- mpi 2 "$NSBI" coverage sbc.yaml --output whole "${big[@]}"
stop_when_journaled 3000 "killed/work/coverage_sbc/*.journal" killed.out \
  "^$NSBI coverage sbc.yaml --output killed" -- "$NSBI" coverage sbc.yaml --output killed "${big[@]}"
[ -e killed/coverage.json ] && fail "the interrupted coverage wrote its summary"
expect_exit 0 resumed.out -- mpi 2 "$NSBI" coverage sbc.yaml --output killed "${big[@]}"
expect_grep "coverage_sbc: resuming: [1-9][0-9]* of 120 work items already done" resumed.out
for path in "${arrays[@]}" /coverage/exact/sbc/histogram; do h5same whole/results.h5 killed/results.h5 "$path"; done

# Refusals naming the key.
expect_exit 2 bins.out -- "$NSBI" coverage sbc.yaml --force --set coverage.sbc.bins=7
expect_grep "coverage.sbc.bins.*must divide the 100 possible ranks" bins.out
expect_exit 2 wide.out -- "$NSBI" coverage sbc.yaml --force --set prior.mu2.max=1.0
expect_grep "prior.*support of mu2 reaches beyond the infer grid's range" wide.out
expect_exit 2 method.out -- "$NSBI" coverage sbc.yaml --force --set "coverage.methods=[sbc, hpd]"
expect_grep "coverage.methods" method.out
finish
