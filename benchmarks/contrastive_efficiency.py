#!/usr/bin/python3
"""Accuracy per simulation budget of the marginal-reference losses: the binary classifier (carl), NRE-B and
NRE-C (train.loss nre_b, nre_c), written to benchmarks/results/contrastive_efficiency.json.

gaussian2d (exact likelihood, docs/simulators.md), θ uniform on its whole domain, train.reference: marginal.
For each simulation budget N and seed, `nsbi simulate` N events once, then `nsbi train` each loss with the
same recipe (network, batch of 128 dataset rows per step, epochs, early stopping on the validation loss), and
on a fixed evaluation set (θ* uniform, x ~ p(x|θ*), drawn here with numpy) measures

- centred_rms: at each x, the error e(θ) = log r̂(x|θ) − log p(x|θ) on a 15 × 15 grid of θ (cell centres of
  the prior box), weighted by the exact posterior p(θ|x) on the grid, less its weighted mean: the root of the
  mean over x of Σ_θ p(θ|x) (e(θ) − ē)². It measures the error of the θ-dependence where the posterior has
  its mass, and is blind to a function of x alone, so that NRE-B (whose logit is log r up to c(x)) is
  compared fairly;
- rms: the RMS of log r̂(x|θ*) − log p(x|θ*)/p(x) (p(x) by the midpoint rule on the prior box), which also
  sees the normalisation: NRE-B's is off by its c(x).

Usage: benchmarks/contrastive_efficiency.py --build BUILD [--work DIR] [--sizes 1e3,1e4] [--seeds 3]
       [--losses carl,nre_b,nre_c] [--ranks 1] [--out FILE]
It reports, it does not assert.
"""

import argparse
import datetime
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine_load import machine, mpirun, run_logged, write_results  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import nsbi_model  # noqa: E402  (scripts/ is not a package)

MU_RANGE = (-1.0, 1.0)
RHO_RANGE = (-0.99, 0.99)


def log_density(x, mu2, rho):
    """log p(x|θ) of gaussian2d, broadcasting x [..., 2] against θ."""
    d2 = x[..., 1] - mu2
    x1 = x[..., 0]
    return (-0.5 * (x1 * x1 + d2 * d2 - 2.0 * rho * x1 * d2) / (1.0 - rho * rho)
            - 0.5 * np.log(1.0 - rho * rho) - np.log(2.0 * np.pi))


def log_evidence(x, cells=100):
    """log p(x) = log ∫ p(x|θ) π(θ) dθ by the midpoint rule on cells × cells of the prior box."""
    mu = MU_RANGE[0] + (MU_RANGE[1] - MU_RANGE[0]) * (np.arange(cells) + 0.5) / cells
    rho = RHO_RANGE[0] + (RHO_RANGE[1] - RHO_RANGE[0]) * (np.arange(cells) + 0.5) / cells
    m, r = np.meshgrid(mu, rho, indexing="ij")
    values = log_density(x[:, None, :], m.ravel()[None, :], r.ravel()[None, :])
    top = values.max(axis=1)
    return top + np.log(np.mean(np.exp(values - top[:, None]), axis=1))


def evaluation_set(n, seed=20261207):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(*MU_RANGE, size=n)
    rho = rng.uniform(*RHO_RANGE, size=n)
    z1 = rng.standard_normal(n)
    z2 = rng.standard_normal(n)
    x = np.stack([z1, mu + rho * z1 + np.sqrt(1.0 - rho * rho) * z2], axis=1)
    return x, np.stack([mu, rho], axis=1)


def grid(points=15):
    """θ cell centres of the prior box, points per parameter."""
    mu = MU_RANGE[0] + (MU_RANGE[1] - MU_RANGE[0]) * (np.arange(points) + 0.5) / points
    rho = RHO_RANGE[0] + (RHO_RANGE[1] - RHO_RANGE[0]) * (np.arange(points) + 0.5) / points
    m, r = np.meshgrid(mu, rho, indexing="ij")
    return np.stack([m.ravel(), r.ravel()], axis=1)


def epochs_for(n):
    """About 4000 steps of 128 dataset rows whatever N (at least 20 epochs); early stopping ends them sooner."""
    return max(20, int(4000 * 128 / (0.8 * n)))


RECIPE_EPOCHS = "max(20, 4000 * 128 / (0.8 N))"


def config_text(directory, n, loss, seed, epochs=None, chunk_rows=None, patience=None):
    epochs = epochs_for(n) if epochs is None else epochs
    chunk_rows = max(8, min(4096, n // 64)) if chunk_rows is None else chunk_rows
    patience = max(10, epochs // 10) if patience is None else patience
    return f"""campaign: {{name: contrastive-efficiency, seed: {seed}, dir: {directory}}}
simulator: {{name: gaussian2d}}
simulate:
  n_samples: {n}
  block_size: 8192
  output: ../data-{n}-{seed}/dataset.h5
train:
  reference: marginal
  loss: {loss}
  network: {{head: {{hidden: [64, 64, 64], activation: silu}}}}
  batch_size: 256
  epochs: {epochs}
  max_steps: 4000
  learning_rate: 2e-3
  validation_fraction: 0.2
  early_stopping_patience: {patience}
  n_shards: 4
  chunk_rows: {chunk_rows}
  diagnostics: {{grid_points: 3, n_events: 1000}}
pipeline: [simulate, train]
"""


def posterior_weights(exact_grid):
    """p(θ|x) on the grid (uniform prior): the exact likelihoods normalised per x."""
    w = np.exp(exact_grid - exact_grid.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def measure(model, x, theta, theta_grid, exact_grid, exact_at_truth):
    n, g = len(x), len(theta_grid)
    learned = model.log_ratio(np.repeat(x, g, axis=0), np.tile(theta_grid, (n, 1))).reshape(n, g)
    w = posterior_weights(exact_grid)
    error = learned - exact_grid
    centred = error - (w * error).sum(axis=1, keepdims=True)
    at_truth = model.log_ratio(x, theta) - exact_at_truth
    return float(np.sqrt(np.mean((w * centred ** 2).sum(axis=1)))), float(np.sqrt(np.mean(at_truth ** 2)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build directory with jobs/nsbi")
    parser.add_argument("--work", default="/tmp/nsbi-contrastive-efficiency")
    parser.add_argument("--sizes", default="1e3,1e4")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--losses", default="carl,nre_b,nre_c")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--evaluation-events", type=int, default=2000)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "contrastive_efficiency.json"))
    args = parser.parse_args()

    nsbi = os.path.join(os.path.abspath(args.build), "jobs", "nsbi")
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    losses = args.losses.split(",")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    x, theta = evaluation_set(args.evaluation_events)
    theta_grid = grid()
    exact_grid = log_density(x[:, None, :], theta_grid[None, :, 0], theta_grid[None, :, 1])
    evidence = log_evidence(x)
    exact_at_truth = log_density(x, theta[:, 0], theta[:, 1]) - evidence

    w = posterior_weights(exact_grid)
    spread = exact_grid - (w * exact_grid).sum(axis=1, keepdims=True)
    # What a θ-blind estimate would miss: the posterior-weighted spread of the exact log likelihood.
    signal = float(np.sqrt(np.mean((w * spread ** 2).sum(axis=1))))
    print(f"evaluation: {len(x)} events, {len(theta_grid)} grid points, signal (centred) {signal:.4f}")

    table = []
    for n in sizes:
        for seed in range(1, args.seeds + 1):
            for loss in losses:
                directory = os.path.join(args.work, f"{loss}-{n}-{seed}")
                os.makedirs(directory, exist_ok=True)
                config = os.path.join(directory, "campaign.yaml")
                with open(config, "w") as f:
                    f.write(config_text(directory, n, loss, 7000 + seed))
                seconds = run_logged(mpirun(args.ranks, nsbi, "run", config), env)
                model = nsbi_model.Model(os.path.join(directory, "model.h5"))
                centred, rms = measure(model, x, theta, theta_grid, exact_grid, exact_at_truth)
                table.append({"n_events": n, "seed": seed, "loss": loss, "centred_rms": centred, "rms": rms,
                              "seconds": seconds})
                print(f"N = {n:>6} seed {seed} {loss:6} centred RMS {centred:.4f}  RMS {rms:.4f}", flush=True)

    summary = {}
    for n in sizes:
        for loss in losses:
            rows = [r for r in table if r["n_events"] == n and r["loss"] == loss]
            c = np.array([r["centred_rms"] for r in rows])
            summary[f"{loss}@{n}"] = {
                "centred_rms_mean": float(c.mean()),
                "centred_rms_std": float(c.std(ddof=1)) if len(c) > 1 else 0.0,
                "rms_mean": float(np.mean([r["rms"] for r in rows])),
                "seconds_mean": float(np.mean([r["seconds"] for r in rows]))}
    result = {"benchmark": "contrastive_efficiency", "date": datetime.datetime.utcnow().isoformat() + "Z",
              "machine": machine(), "simulator": "gaussian2d", "reference": "marginal",
              "evaluation_events": len(x), "theta_grid_points": len(theta_grid),
              "signal_centred_rms": signal,
              "command": " ".join(sys.argv), "recipe": config_text("DIR", "N", "LOSS", "7000 + seed", RECIPE_EPOCHS,
                                                           "max(8, min(4096, N / 64))", "max(10, epochs / 10)"),
              "table": table, "summary": summary}
    write_results(args.out, result)


if __name__ == "__main__":
    main()
