#!/usr/bin/python3
"""Full-size checks of `nsbi train` (issue: training engine), written to benchmarks/results/train.json.

accuracy: the lecture's gaussian2d setup (theta = (mu2, rho12) uniform on [-1, 1] x [-0.99, 0.99], theta0 = (0, 0),
    1e5 events per class). RMS(log r_hat - exact log r) over fresh events x ~ p(x|theta) (numpy's generator,
    independent of nsbi's streams), at the lecture's points and on the 5 x 5 grid of the model's diagnostics;
    one network and an ensemble of five.
memory: a dataset and a reference dataset each ten times larger than train.memory_budget_mib, one epoch on one
    rank; peak RSS from train.json, against the budget.

Usage: benchmarks/train_acceptance.py BUILD_DIR [--quick] [--out FILE]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import nsbi_model  # noqa: E402

LECTURE_POINTS = [(0.5, 0.5), (-0.5, 0.3), (0.2, -0.5), (-0.3, -0.2), (0.8, 0.0), (0.0, 0.7)]


def run(nsbi, args, ranks=1):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = ["mpirun", "-np", str(ranks), "--oversubscribe", nsbi] + args
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("failed: " + " ".join(command) + "\n" + result.stdout + result.stderr)
    return result.stdout + result.stderr


def log_density(x, mu2, rho):
    d2 = x[:, 1] - mu2
    return (-0.5 * (x[:, 0] ** 2 + d2 ** 2 - 2 * rho * x[:, 0] * d2) / (1 - rho ** 2) - 0.5 * np.log(1 - rho ** 2)
            - np.log(2 * np.pi))


def rms_at(model, points, n, rng):
    out = []
    for mu2, rho in points:
        cov = [[1.0, rho], [rho, 1.0]]
        x = rng.multivariate_normal([0.0, mu2], cov, size=n)
        exact = log_density(x, mu2, rho) - log_density(x, 0.0, 0.0)
        learned = model.log_ratio(x, np.array([mu2, rho]))
        out.append({"theta": [mu2, rho], "rms": float(np.sqrt(np.mean((learned - exact) ** 2))),
                    "mean_difference": float(np.mean(learned - exact)),
                    "signal_rms": float(np.std(exact))})
    return out


def accuracy(nsbi, work, quick):
    n = 20000 if quick else 100000
    config = os.path.join(work, "accuracy.yaml")
    with open(config, "w") as f:
        f.write(f"""campaign: {{name: lecture, seed: 2026, dir: {work}/accuracy}}
simulator: {{name: gaussian2d}}
simulate:
  n_samples: {n}
  proposal:
    mu2: {{kind: uniform, min: -1, max: 1}}
    rho12: {{kind: uniform, min: -0.99, max: 0.99}}
  reference: {{theta: {{mu2: 0, rho12: 0}}}}
train:
  hidden: [64, 64, 64]
  activation: silu
  batch_size: 256
  epochs: {10 if quick else 40}
  learning_rate: 2e-3
  early_stopping_patience: 0
  diagnostics: {{grid_points: 5, n_events: 20000}}
""")
    run(nsbi, ["simulate", config, "--force"], ranks=2)
    results = {}
    rng = np.random.default_rng(7)
    for ensemble in (1, 5):
        out = f"model-{ensemble}.h5"
        run(nsbi, ["train", config, "--force", "--set", f"train.ensemble={ensemble}", "--set",
                   f"train.output={out}"], ranks=2)
        with open(os.path.join(work, "accuracy", "train.json")) as f:
            summary = json.load(f)
        model = nsbi_model.load(os.path.join(work, "accuracy", out))
        with nsbi_model.h5py.File(os.path.join(work, "accuracy", out)) as f:
            grid = f["diagnostics/exact_log_ratio"][...]
        points = rms_at(model, LECTURE_POINTS, 20000, rng)
        results[f"ensemble_{ensemble}"] = {
            "lecture_points": points,
            "lecture_points_max_rms": max(p["rms"] for p in points),
            "grid": [{"theta": row[:2].tolist(), "rms": float(row[2]), "mean_difference": float(row[3])}
                     for row in grid],
            "grid_rms_all": summary["diagnostics"]["exact_log_ratio_rms"],
            "grid_rms_worst": summary["diagnostics"]["exact_log_ratio_rms_worst_grid_point"],
            "training_seconds": summary["training_seconds"],
            "samples_per_second": summary["samples_per_second"],
        }
    results["events_per_class"] = n
    results["target_rms"] = 0.05
    return results


def memory(nsbi, work, quick):
    budget_mib = 64
    row_bytes = 4 * 8  # gaussian2d: theta (2) and x (2), float64
    rows = (budget_mib << 20) * (1 if quick else 10) // row_bytes + 1
    config = os.path.join(work, "memory.yaml")
    with open(config, "w") as f:
        f.write(f"""campaign: {{name: memory, seed: 5, dir: {work}/memory}}
simulator: {{name: gaussian2d}}
simulate:
  n_samples: {rows}
  block_size: 1048576
  reference: {{theta: {{mu2: 0, rho12: 0}}}}
train:
  hidden: [32, 32]
  batch_size: 4096
  epochs: 1
  early_stopping_patience: 0
  validation_fraction: 0.01
  memory_budget_mib: {budget_mib}
  diagnostics: {{grid_points: 2, n_events: 1000}}
""")
    run(nsbi, ["simulate", config, "--force"], ranks=2)
    run(nsbi, ["train", config, "--force"], ranks=1)
    with open(os.path.join(work, "memory", "train.json")) as f:
        summary = json.load(f)
    size = sum(os.path.getsize(os.path.join(work, "memory", name)) for name in ("dataset.h5", "reference.h5"))
    return {
        "memory_budget_mib": budget_mib,
        "dataset_mib": os.path.getsize(os.path.join(work, "memory", "dataset.h5")) / 2 ** 20,
        "both_datasets_mib": size / 2 ** 20,
        "rows_per_dataset": rows,
        "rss_before_data_mib": summary["rss_before_data_mib_per_rank"],
        "peak_rss_mib": summary["peak_rss_mib_per_rank"],
        "peak_rss_above_start_mib": summary["peak_rss_mib_per_rank"] - summary["rss_before_data_mib_per_rank"],
        "samples_per_second": summary["samples_per_second"],
        "training_seconds": summary["training_seconds"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test, not the figures")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "train.json"))
    args = parser.parse_args()
    nsbi = os.path.abspath(os.path.join(args.build, "jobs", "nsbi"))
    with tempfile.TemporaryDirectory(prefix="nsbi-train-bench-") as work:
        result = {
            "benchmark": "nsbi train: accuracy against the exact ratio, memory on a dataset larger than the budget",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick,
            "accuracy": accuracy(nsbi, work, args.quick),
            "memory": memory(nsbi, work, args.quick),
        }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps({"accuracy_max_rms_lecture_points": {k: v["lecture_points_max_rms"]
                                                          for k, v in result["accuracy"].items()
                                                          if k.startswith("ensemble")},
                      "memory": result["memory"]}, indent=2))


if __name__ == "__main__":
    main()
