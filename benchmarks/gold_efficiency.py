#!/usr/bin/python3
"""Sample efficiency of the gold losses (issue 5, acceptance 3), written to benchmarks/results/gold_efficiency.json
and a plot next to it.

particle_chain in mode parton_only (docs/simulators.md): x = cos θ* + N(0, σ²), κ only, whose likelihood is
exact. For each training size N (events simulated for class 1, and as many at the reference κ0 = 0) and each
loss (CARL and the gold losses ROLR, ALICE, ALICES, RASCAL), `nsbi simulate` then `nsbi train` an ensemble of
K members (different seeds; the same recipe for every loss and size), and the mean squared error of log r̂(x|κ)
against the exact log r(x|κ, 0) over a fixed evaluation set (κ ~ U[-0.8, 0.8], x ~ p(x|κ), drawn here with
numpy) is measured for the ensemble and for each member: the members' standard deviation is the error bar.

Then: the N at which the best gold loss reaches CARL's error at the largest N, by log-log interpolation of its
error against N, and the factor of simulations saved.

Usage: benchmarks/gold_efficiency.py --build BUILD [--work DIR] [--sizes 1e3,1e4,1e5] [--members 5]
       [--losses carl,rolr,alice,alices,rascal] [--out FILE] [--ranks 2]
It reports, it does not assert: the exit code is non-zero only when something could not be measured.
"""

import argparse
import datetime
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine_load import mpirun, pyplot, run_logged, write_results  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import nsbi_model  # noqa: E402  (scripts/ is not a package)

SIGMA = 0.1
KAPPA_RANGE = (-0.8, 0.8)
GOLD_LOSSES = {"rolr", "alice", "alices", "rascal", "cascal"}


def a_of(kappa):
    return 2.0 * kappa / (1.0 + kappa * kappa)


def log_marginal(x, kappa, sigma=SIGMA):
    """log p(x|κ) of parton_only (docs/simulators.md): (3/8)[I0 + I2 + 2a(κ) I1], α = (−1−x)/σ, β = (1−x)/σ."""
    from math import erf

    alpha = (-1.0 - x) / sigma
    beta = (1.0 - x) / sigma
    cdf = np.vectorize(lambda z: 0.5 * (1.0 + erf(z / math.sqrt(2.0))))
    pdf = lambda z: np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
    i0 = cdf(beta) - cdf(alpha)
    dphi = pdf(alpha) - pdf(beta)
    i1 = x * i0 + sigma * dphi
    i2 = x * x * i0 + 2.0 * x * sigma * dphi + sigma * sigma * (i0 + alpha * pdf(alpha) - beta * pdf(beta))
    return np.log(0.375 * (i0 + i2 + 2.0 * a_of(kappa) * i1))


def evaluation_set(n, seed=20261122):
    """κ ~ U(range), c ~ (3/8)(1 + c² + 2a c) by rejection, x = c + N(0, σ²)."""
    rng = np.random.default_rng(seed)
    kappa = rng.uniform(*KAPPA_RANGE, size=n)
    a = a_of(kappa)
    c = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        cand = rng.uniform(-1.0, 1.0, size=todo.size)
        u = rng.uniform(size=todo.size)
        ok = u * (2.0 + 2.0 * np.abs(a[todo])) < 1.0 + cand * cand + 2.0 * a[todo] * cand
        c[todo[ok]] = cand[ok]
        todo = todo[~ok]
    x = c + SIGMA * rng.standard_normal(n)
    return x, kappa, log_marginal(x, kappa) - log_marginal(x, 0.0)


def epochs_for(n):
    """Epochs for N events: about 1e4 optimizer steps (an epoch is ~N/80 steps of 64 + 64 examples), at least
    20 and at most 8000 epochs; early stopping ends them once the validation loss stalls."""
    return max(20, min(8000, int(8e5 / n)))


def patience_for(n):
    """Early-stopping patience: a tenth of the epochs (at least 10), so that it spans ~1000 steps at any N."""
    return max(10, epochs_for(n) // 10)


def config_text(directory, n, loss, members, seed, epochs, chunk_rows, patience, precision="f32"):
    return f"""campaign: {{name: gold-efficiency, seed: {seed}, dir: {directory}}}
simulator: {{name: particle_chain, mode: parton_only, sigma: {SIGMA}}}
simulate:
  n_samples: {n}
  block_size: 8192
  gold: true
  output: ../data-{n}/dataset.h5
  proposal: {{kappa: {{kind: uniform, min: {KAPPA_RANGE[0]}, max: {KAPPA_RANGE[1]}}}}}
  reference: {{theta: {{kappa: 0}}, output: ../data-{n}/reference.h5}}
train:
  loss: {loss}
  precision: {precision}
  alpha: 1
  network: {{head: {{hidden: [64, 64], activation: silu}}}}
  batch_size: 128
  epochs: {epochs}
  max_steps: 12000
  learning_rate: 2e-3
  validation_fraction: 0.2
  early_stopping_patience: {patience}
  n_shards: 2
  chunk_rows: {chunk_rows}
  ensemble: {members}
  diagnostics: {{grid_points: 3, n_events: 1000}}
pipeline: [simulate, train]
"""


def matching_size(sizes, errors, target):
    """The N at which errors(N) (log-log interpolated) falls to target; None if it never does in range."""
    logs = [math.log(n) for n in sizes]
    for i in range(len(sizes)):
        if errors[i] <= target:
            if i == 0:
                return sizes[0], True  # already below at the smallest size: an upper bound
            e0, e1 = math.log(errors[i - 1]), math.log(errors[i])
            t = (math.log(target) - e0) / (e1 - e0)
            return math.exp(logs[i - 1] + t * (logs[i] - logs[i - 1])), False
    return None, False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build directory with jobs/nsbi")
    parser.add_argument("--work", default="/tmp/nsbi-gold-efficiency")
    parser.add_argument("--sizes", default="1e3,1e4,1e5")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--losses", default="carl,rolr,alice,alices,rascal")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--evaluation-events", type=int, default=20000)
    parser.add_argument("--precisions", default="f32",
                        help="train.precision values trained side by side (f32,bf16); the table's rows name theirs")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gold_efficiency.json"))
    args = parser.parse_args()

    nsbi = os.path.join(os.path.abspath(args.build), "jobs", "nsbi")
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    losses = args.losses.split(",")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    x_eval, kappa_eval, exact = evaluation_set(args.evaluation_events)
    x_eval = x_eval[:, None]
    kappa_eval = kappa_eval[:, None]
    print(f"evaluation set: {len(exact)} events, RMS of log r {np.sqrt(np.mean((exact - exact.mean()) ** 2)):.4f}")

    table = []
    precisions = args.precisions.split(",")
    for n, loss, precision in ((n, loss, p) for n in sizes for loss in losses for p in precisions):
        directory = os.path.join(args.work, f"{loss}-{n}" + ("" if precision == "f32" else f"-{precision}"))
        os.makedirs(directory, exist_ok=True)
        config = os.path.join(directory, "campaign.yaml")
        with open(config, "w") as f:
            f.write(config_text(directory, n, loss, args.members, 1000 + n, epochs_for(n),
                                    max(8, min(4096, n // 64)), patience_for(n), precision))
        run_logged(mpirun(args.ranks, nsbi, "run", config), env)
        model = nsbi_model.Model(os.path.join(directory, "model.h5"))
        squared = (model.log_ratio(x_eval, kappa_eval) - exact) ** 2
        ensemble = float(np.mean(squared))
        member_errors = [float(np.mean((model.log_ratio(x_eval, kappa_eval, member=k) - exact) ** 2))
                         for k in range(args.members)]
        # The MSE's sampling error over the evaluation events (not over training seeds: see mse_members_std).
        row = {"n_events": n, "loss": loss, "precision": precision, "mse_ensemble": ensemble,
               "mse_ensemble_standard_error": float(np.std(squared) / np.sqrt(len(squared))),
               "mse_members_mean": float(np.mean(member_errors)),
               "mse_members_std": float(np.std(member_errors, ddof=1)) if args.members > 1 else 0.0,
               "mse_members": member_errors}
        table.append(row)
        print(f"N = {n:>7}  {loss:7} {precision}  MSE ensemble {ensemble:.5f}  members {row['mse_members_mean']:.5f} "
              f"± {row['mse_members_std']:.5f}", flush=True)

    def errors_of(loss, precision=precisions[0]):
        return [next(r["mse_ensemble"] for r in table
                     if r["loss"] == loss and r["n_events"] == n and r["precision"] == precision) for n in sizes]

    summary = {}
    if "carl" in losses:
        carl = errors_of("carl")
        gold = [loss for loss in losses if loss in GOLD_LOSSES]
        best = min(gold, key=lambda loss: errors_of(loss)[-1]) if gold else None
        summary["carl_mse_at_largest"] = carl[-1]
        summary["gold_beats_carl"] = {loss: {str(n): errors_of(loss)[i] < carl[i] for i, n in enumerate(sizes)}
                                      for loss in gold}
        if best:
            match, bound = matching_size(sizes, errors_of(best), carl[-1])
            summary["best_gold_loss"] = best
            summary["best_gold_events_to_match_carl_at_largest"] = match
            summary["match_is_upper_bound"] = bound
            summary["simulations_saved_factor"] = sizes[-1] / match if match else None
            if match:
                print(f"{best} reaches CARL's MSE at N = {sizes[-1]:g} ({carl[-1]:.5f}) with "
                      f"{'at most ' if bound else ''}{match:.3g} events: {sizes[-1] / match:.3g}x fewer simulations")

    if len(precisions) > 1:
        # Each later precision's MSE over the first's, per loss and size (the issue asks for within 20 %).
        summary["mse_ratio_to_" + precisions[0]] = {
            p: {loss: {str(n): e / f for n, e, f in zip(sizes, errors_of(loss, p), errors_of(loss))}
                for loss in losses} for p in precisions[1:]}
    result = {"benchmark": "gold_efficiency", "date": datetime.datetime.utcnow().isoformat() + "Z",
              "simulator": "particle_chain parton_only", "sigma": SIGMA, "kappa_range": KAPPA_RANGE,
              "reference_kappa": 0.0, "members": args.members, "evaluation_events": len(exact),
              "command": " ".join(sys.argv), "recipe": config_text("DIR", "N", "LOSS", args.members, "1000 + N", "max(20, min(8000, 8e5 / N))",
                                        "max(8, min(4096, N / 64))", "max(10, epochs / 10)"),
              "table": table, "summary": summary}
    write_results(args.out, result)
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for loss in losses:
        rows = [next(r for r in table if r["loss"] == loss and r["n_events"] == n) for n in sizes]
        ax.errorbar(sizes, [r["mse_ensemble"] for r in rows], yerr=[r["mse_members_std"] for r in rows],
                    marker="o", capsize=3, label=loss.upper())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("simulated events per class")
    ax.set_ylabel("MSE of log r̂(x|κ) vs exact")
    ax.set_title("particle_chain parton_only: sample efficiency")
    ax.legend()
    fig.tight_layout()
    plot = os.path.splitext(args.out)[0] + ".png"
    fig.savefig(plot, dpi=120)
    print("wrote", plot)


if __name__ == "__main__":
    main()
