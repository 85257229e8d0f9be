#!/usr/bin/python3
"""Full-size checks of `nsbi train` (issue: training engine), written to benchmarks/results/train.json.

accuracy: the lecture's gaussian2d setup (theta = (mu2, rho12) uniform on [-1, 1] x [-0.99, 0.99], theta0 = (0, 0),
    1e5 events per class). RMS(log r_hat - exact log r) over fresh events x ~ p(x|theta) (numpy's generator,
    independent of nsbi's streams), at the lecture's points and on the 5 x 5 grid of the model's diagnostics;
    one network and an ensemble of five.
memory: a dataset and a reference dataset each ten times larger than train.memory_budget_mib, one epoch on one
    rank; peak RSS from train.json, against the budget.
end_to_end: the whole `nsbi train` stage (streaming from HDF5, class-0 pairing, standardisation, steps,
    validation, checkpoints) on one rank and one thread, f32 and bf16, against a PyTorch loop on the same files
    held in memory (same network 3 x 64 relu, batch 256, AdamW, BCE-with-logits, 5 epochs), in samples/s, each
    side's fastest. PyTorch is PyPI's (pypi_env.TORCH, in its virtual environment), in each TORCH_WAYS way.

Usage: benchmarks/train_acceptance.py BUILD_DIR [--quick] [--out FILE] [--accuracy-only | --end-to-end-only]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import nsbi_model  # noqa: E402
import pypi_env  # noqa: E402

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
        squared = (learned - exact) ** 2
        rms = float(np.sqrt(np.mean(squared)))
        # The sampling error of the RMS over the n fresh events (delta method: sd(d^2) / (2 RMS sqrt(n))).
        out.append({"theta": [mu2, rho], "rms": rms,
                    "rms_standard_error": float(np.std(squared) / (2 * rms * np.sqrt(n))),
                    "mean_difference": float(np.mean(learned - exact)),
                    "signal_rms": float(np.std(exact))})
    return out


def lecture_dataset(nsbi, work, quick):
    """Writes the lecture setup's config (work/accuracy.yaml) and simulates its datasets (work/accuracy), which
    accuracy and end_to_end train on."""
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
  network: {{head: {{hidden: [64, 64, 64], activation: silu}}}}
  batch_size: 256
  epochs: {10 if quick else 40}
  learning_rate: 2e-3
  early_stopping_patience: 0
  diagnostics: {{grid_points: 5, n_events: 20000}}
""")
    run(nsbi, ["simulate", config, "--force"], ranks=2)


def accuracy(nsbi, work, quick, precision):
    n = 20000 if quick else 100000
    config = os.path.join(work, "accuracy.yaml")
    results = {}
    rng = np.random.default_rng(7)
    for ensemble in (1, 5):
        out = f"model-{ensemble}.h5"
        run(nsbi, ["train", config, "--force", "--set", f"train.ensemble={ensemble}", "--set",
                   f"train.output={out}", "--set", f"train.precision={precision}"], ranks=2)
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
            "precision": summary["precision"],
            "gemm_implementation": summary["gemm_implementation"],
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
  network: {{head: {{hidden: [32, 32]}}}}
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


# The ways the PyTorch loop of end_to_end runs, each timed: (precision, AdamW implementation, torch.compile).
TORCH_WAYS = [(p, o, False) for p in ("f32", "bf16") for o in ("foreach", "fused")] + \
             [(p, "fused", True) for p in ("f32", "bf16")]


def end_to_end(nsbi, work, quick):
    """nsbi train (f32 and bf16) on one rank and one thread against PyTorch's loop in each TORCH_WAYS way (in
    the PyPI environment's interpreter); the ratio is of each side's fastest."""
    epochs = 2 if quick else 5
    nsbi_rates = {}
    for precision in ("f32", "bf16"):
        config = os.path.join(work, "accuracy.yaml")
        run(nsbi, ["train", config, "--force", "--set", "train.network.head.hidden=[64,64,64]",
                   "--set", "train.network.head.activation=relu", "--set", f"train.precision={precision}",
                   "--set", f"train.epochs={epochs}", "--set", "train.output=e2e.h5", "--set", "train.threads=1",
                   "--set", "train.validation_fraction=0.1"], ranks=1)
        with open(os.path.join(work, "accuracy", "train.json")) as f:
            nsbi_rates[precision] = json.load(f)["samples_per_second"]
    python = pypi_env.ensure("torch", pypi_env.TORCH)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([python, os.path.abspath(__file__), "--torch-end-to-end", os.path.join(work, "accuracy"),
                             "--epochs", str(epochs)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("failed: the PyTorch loop\n" + result.stdout + result.stderr)
    torch = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    working = {way: r for way, r in torch["ways"].items() if "samples_per_second" in r}
    nsbi_best = max(nsbi_rates, key=nsbi_rates.get)
    torch_best = max(working, key=lambda way: working[way]["samples_per_second"])
    return {"network": "3 x 64 relu", "batch": 256, "epochs": epochs, "threads": 1,
            "nsbi_samples_per_second_by_precision": nsbi_rates, "nsbi_samples_per_second": nsbi_rates[nsbi_best],
            "nsbi_precision": nsbi_best, "pytorch_ways": torch["ways"], "pytorch_way": torch_best,
            "pytorch_samples_per_second": working[torch_best]["samples_per_second"],
            "ratio": nsbi_rates[nsbi_best] / working[torch_best]["samples_per_second"], "torch": torch["versions"]}


def torch_end_to_end(directory, epochs):
    """Runs in the PyPI environment's interpreter: PyTorch's loop over the two files held in memory, in each
    TORCH_WAYS way (a way that fails, torch.compile without a compiler say, records its error). Prints JSON."""
    import h5py
    import torch
    torch.set_num_threads(1)

    def load(name):
        with h5py.File(os.path.join(directory, name)) as f:
            return torch.tensor(f["theta"][...], dtype=torch.float32), torch.tensor(f["x"][...], dtype=torch.float32)

    ways = {}
    for precision, optimizer_kind, compiled in TORCH_WAYS:
        name = f"{precision}/{'compile' if compiled else 'eager'}/{optimizer_kind}"
        torch.manual_seed(3)
        start = time.perf_counter()
        theta, x = load("dataset.h5")
        _, x0 = load("reference.h5")
        inputs = torch.cat([torch.cat([x, theta], 1), torch.cat([x0, theta], 1)])
        inputs = (inputs - inputs.mean(0)) / inputs.std(0)
        labels = torch.cat([torch.ones(len(x)), torch.zeros(len(x0))])
        layers, width = [], inputs.shape[1]
        for w in (64, 64, 64):
            layers += [torch.nn.Linear(width, w), torch.nn.ReLU()]
            width = w
        net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
        optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.0, **{optimizer_kind: True})
        forward = torch.compile(net) if compiled else net
        loss_fn = torch.nn.BCEWithLogitsLoss()
        n_train = int(0.9 * len(inputs))
        samples = 0
        try:
            for _ in range(epochs):
                order = torch.randperm(n_train)
                for first in range(0, n_train - 255, 256):
                    batch = order[first:first + 256]
                    optimizer.zero_grad()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                        loss = loss_fn(forward(inputs[batch]).squeeze(1), labels[batch])
                    loss.backward()
                    optimizer.step()
                    samples += 256
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss_fn(forward(inputs[n_train:]).squeeze(1), labels[n_train:])
        except Exception as error:  # noqa: BLE001  (recorded: the way is reported as not working)
            ways[name] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
            continue
        # The whole loop, data loading and (for torch.compile) compilation included, as nsbi's figure is.
        ways[name] = {"samples_per_second": samples / (time.perf_counter() - start)}
    print(json.dumps({"ways": ways, "versions": pypi_env.torch_build()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test, not the figures")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "train.json"))
    parser.add_argument("--precisions", default="f32",
                        help="train.precision values whose accuracy is measured side by side (f32,bf16); the "
                             "first one's is 'accuracy', each under 'accuracy_by_precision'")
    parser.add_argument("--accuracy-only", action="store_true", help="skip the end-to-end and memory parts")
    parser.add_argument("--end-to-end-only", action="store_true", help="skip the accuracy and memory parts")
    parser.add_argument("--torch-end-to-end", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_end_to_end:
        torch_end_to_end(args.torch_end_to_end, args.epochs)
        return
    if args.build is None:
        parser.error("the build directory is required")
    nsbi = os.path.abspath(os.path.join(args.build, "jobs", "nsbi"))
    with tempfile.TemporaryDirectory(prefix="nsbi-train-bench-") as work:
        result = {
            "benchmark": "nsbi train: accuracy against the exact ratio, memory on a dataset larger than the budget",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick,
        }
        precisions = args.precisions.split(",")
        lecture_dataset(nsbi, work, args.quick)
        if not args.end_to_end_only:
            result["accuracy_by_precision"] = {p: accuracy(nsbi, work, args.quick, p) for p in precisions}
            result["accuracy"] = result["accuracy_by_precision"][precisions[0]]
        if not args.accuracy_only:
            result["end_to_end"] = end_to_end(nsbi, work, args.quick)
        if not (args.accuracy_only or args.end_to_end_only):
            result["memory"] = memory(nsbi, work, args.quick)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps({"accuracy_max_rms_lecture_points": {p: {k: v["lecture_points_max_rms"]
                                                              for k, v in a.items() if k.startswith("ensemble")}
                                                          for p, a in result.get("accuracy_by_precision", {}).items()},
                      "end_to_end": result.get("end_to_end"), "memory": result.get("memory")}, indent=2))


if __name__ == "__main__":
    main()
