#!/usr/bin/python3
"""Acceptance measurement of the MCMC posterior (issue 20, points 3 and 4), written to
benchmarks/results/sbc.json. Not a test: it takes minutes.

1. SBC: `nsbi coverage` with methods [sbc, expected_coverage] on gaussian2d with the exact estimator (its
   posterior is the true one) and infer.posterior: mcmc, 1000 runs of 20 events, L = 99 samples, 10 bins,
   4 chains per run (200 warm-up iterations, thinned by 10). Required: every parameter's rank-histogram
   χ² p-value > 1e-4. The expected coverage per level is recorded. With --ranks 2 (the default) the same
   run on 1 rank is repeated with --compare-ranks and the arrays compared bit for bit.
2. MCMC against the grid: for each observed dataset (20 events at a few true θ, simulated by
   `nsbi simulate` with its own streams), `nsbi infer` with the exact estimator on a 201 × 181 grid (10,000
   posterior draws) and with infer.posterior: mcmc (20 chains × 500 draws, 500 warm-up), then
   `nsbi c2st GRID MCMC`. Required: accuracy ≤ 0.55 for each.

Usage: benchmarks/sbc_check.py [--build DIR] [--work DIR] [--runs N] [--ranks R] [--compare-ranks]
                               [--observations K] [--out FILE]
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THETAS = [(0.3, 0.4), (-0.5, 0.2), (0.1, -0.5), (0.6, -0.3), (-0.2, -0.6)]

SBC_CONFIG = """campaign: {{seed: 2026, dir: {dir}}}
simulator: {{name: gaussian2d}}
simulate:
  n_samples: 1000
  observed: {{theta: {{mu2: {mu2}, rho12: {rho12}}}, n_events: 20}}
prior:
  mu2: {{kind: uniform, min: -0.9, max: 0.9}}
  rho12: {{kind: uniform, min: -0.9, max: 0.9}}
infer:
  estimators: [exact]
  posterior_samples: 10000
  grid:
    mu2: {{min: -0.9, max: 0.9, points: 201}}
    rho12: {{min: -0.9, max: 0.9, points: 181}}
coverage:
  estimators: [exact]
  methods: [sbc, expected_coverage]
  n_events: 20
  sbc: {{runs: {runs}, runs_per_item: 10, samples: 99, bins: 10, chains: 4, warmup: 200, thin: 10}}
"""
MCMC = ["--set", "infer.posterior=mcmc", "--set", "infer.mcmc.chains=20", "--set", "infer.mcmc.warmup=500",
        "--set", "infer.mcmc.samples=500"]


def run(command, log):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    start = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.time() - start
    text = " ".join(command)
    log.append({"command": text, "exit_code": result.returncode, "seconds": round(seconds, 2)})
    print(f"[{result.returncode}] {seconds:7.1f} s  {text}", flush=True)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-3000:], file=sys.stderr)
        raise SystemExit(f"sbc_check: '{text}' failed")
    return result.stdout + result.stderr, seconds


def mpi(nsbi, ranks, args):
    return ["mpirun", "-np", str(ranks), "--oversubscribe", nsbi] + args


def sbc_part(nsbi, work, args, log):
    config = os.path.join(work, "sbc.yaml")
    with open(config, "w") as f:
        f.write(SBC_CONFIG.format(dir=os.path.join(work, "sbc"), mu2=0.3, rho12=0.4, runs=args.runs))
    _, seconds = run(mpi(nsbi, args.ranks, ["coverage", config, "--force"]), log)
    body = json.load(open(os.path.join(work, "sbc", "coverage.json")))
    entry = body["results_by_estimator"]["exact"]
    p_values = {name: p["p_value"] for name, p in entry["sbc"]["parameters"].items()}
    out = {
        "config": open(config).read(),
        "ranks": args.ranks,
        "seconds": round(seconds, 1),
        "runs": body["posterior_checks"]["runs"],
        "histograms": {name: p["histogram"] for name, p in entry["sbc"]["parameters"].items()},
        "chi2_p_values": p_values,
        "required_p_value_above": 1e-4,
        "passed": all(p > 1e-4 for p in p_values.values()),
        "expected_coverage": [{k: row[k] for k in ("level", "coverage", "clopper_pearson_95")}
                              for row in entry["expected_coverage"]["points"]],
    }
    if args.compare_ranks:
        shutil.copy(os.path.join(work, "sbc", "results.h5"), os.path.join(work, "sbc_ranks.h5"))
        _, one_rank = run(mpi(nsbi, 1, ["coverage", config, "--force"]), log)
        same = all(subprocess.run(["h5diff", "-q", os.path.join(work, "sbc_ranks.h5"),
                                   os.path.join(work, "sbc", "results.h5"), path, path]).returncode == 0
                   for path in ("/coverage/theta_true", "/coverage/exact/sbc/ranks",
                                "/coverage/exact/expected_coverage/credibility"))
        out["one_rank_seconds"] = round(one_rank, 1)
        out["bit_identical_1_and_%d_ranks" % args.ranks] = same
    return out


def c2st_part(nsbi, work, args, log):
    rows = []
    for i, (mu2, rho12) in enumerate(THETAS[:args.observations]):
        directory = os.path.join(work, f"obs{i}")
        config = os.path.join(work, f"obs{i}.yaml")
        with open(config, "w") as f:
            f.write(SBC_CONFIG.format(dir=directory, mu2=mu2, rho12=rho12, runs=1))
        run(mpi(nsbi, args.ranks, ["simulate", config]), log)
        run(mpi(nsbi, args.ranks, ["infer", config, "--force"]), log)
        grid = os.path.join(work, f"grid{i}.h5")
        shutil.copy(os.path.join(directory, "results.h5"), grid)
        _, mcmc_seconds = run(mpi(nsbi, args.ranks, ["infer", config, "--force"] + MCMC), log)
        report = os.path.join(work, f"c2st{i}.json")
        run([nsbi, "c2st", grid + ":/infer/exact/posterior_samples",
             os.path.join(directory, "results.h5") + ":/infer/exact/posterior_samples", "--out", report], log)
        result = json.load(open(report))
        rows.append({"theta": {"mu2": mu2, "rho12": rho12}, "c2st": result["accuracy"],
                     "standard_error": result["standard_error"], "mcmc_seconds": round(mcmc_seconds, 1)})
    return {"observations": rows, "required_at_most": 0.55, "passed": all(r["c2st"] <= 0.55 for r in rows),
            "mcmc": " ".join(MCMC), "grid": "201 x 181 points, 10000 draws"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--work", default=None, help="scratch directory (default: a temporary one, removed)")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--compare-ranks", action="store_true", help="rerun the SBC on 1 rank and compare bits")
    parser.add_argument("--observations", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "sbc.json"))
    args = parser.parse_args()
    nsbi = os.path.join(args.build, "jobs", "nsbi")
    work = args.work or tempfile.mkdtemp(prefix="nsbi_sbc_")
    os.makedirs(work, exist_ok=True)
    log = []
    try:
        result = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "host_cpus": os.cpu_count(), "sbc": sbc_part(nsbi, work, args, log),
                  "c2st_mcmc_vs_grid": c2st_part(nsbi, work, args, log), "commands": log}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: result[k]["passed"] for k in ("sbc", "c2st_mcmc_vs_grid")}))
    print(f"sbc_check: wrote {args.out}")


if __name__ == "__main__":
    main()
