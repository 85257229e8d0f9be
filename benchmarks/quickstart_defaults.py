#!/usr/bin/python3
"""The network and training settings behind train's defaults, measured on the quickstart
(examples/quickstart.yaml), written to benchmarks/results/quickstart_defaults.json.

`nsbi simulate` the quickstart once, then `nsbi train` it once per variant: a base train section (OLD, the
quickstart's before these measurements) with a few keys overridden by --set (a variant lists them). For each variant it records the train stage's
learned-vs-exact error (`diagnostics.exact_log_ratio_rms` of train.json, the RMS over a 5 × 5 θ grid of
log r̂ − log r on fresh events), its wall time and the CPU time of the process (the machine is shared: the
CPU time is the figure that does not depend on the load), and the cores other programs kept busy meanwhile.

Usage: benchmarks/quickstart_defaults.py --build BUILD [--work DIR] [--only NAME]... [--out FILE]
It reports, it does not assert.
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine_load import cpu_seconds, machine, write_results  # noqa: E402

QUICKSTART = os.path.join(ROOT, "examples", "quickstart.yaml")

# The base: the quickstart's train section before these measurements (3 × 64 SiLU, batch 256, 20 epochs,
# learning rate 5e-3, and the defaults for the rest), every key the quickstart sets now written out, so that
# the base stays the same whatever the quickstart sets; a variant changes one or a few keys of it.
OLD = ["train.network={head: {hidden: [64, 64, 64], activation: silu}}", "train.batch_size=256",
       "train.epochs=20", "train.learning_rate=5e-3", "train.weight_decay=0", "train.warmup_steps=0",
       "train.early_stopping_patience=5"]
# The rows these settings were measured on (the quickstart has since taken 1e6: docs in benchmarks/README.md).
SIZES = ["--set", "simulate.n_samples=100000", "--set", "simulate.reference.n_samples=100000"]
VARIANTS = {
    "old quickstart": [],
    "relu": ["train.network.head.activation=relu"],
    "tanh": ["train.network.head.activation=tanh"],
    "width 128": ["train.network.head.hidden=[128, 128, 128]"],
    "depth 4": ["train.network.head.hidden=[64, 64, 64, 64]"],
    "epochs 40": ["train.epochs=40"],
    "lr 2e-3": ["train.learning_rate=2e-3"],
    "batch 512": ["train.batch_size=512"],
    "batch 1024 + lr 1e-2": ["train.batch_size=1024", "train.learning_rate=1e-2"],
    "ensemble 3": ["train.ensemble=3"],
    "ensemble 5": ["train.ensemble=5"],
    "warm-up 500": ["train.warmup_steps=500"],
    "weight decay 1e-4": ["train.weight_decay=1e-4"],
    "weight decay 1e-2": ["train.weight_decay=1e-2"],
    "weight decay 1e-1": ["train.weight_decay=1e-1"],
    "no early stopping": ["train.early_stopping_patience=0"],
    "epochs 40 + no early stopping": ["train.epochs=40", "train.early_stopping_patience=0"],
    "epochs 60 + batch 1024 + lr 1e-2 + no early stopping": ["train.epochs=60", "train.batch_size=1024",
                                                          "train.learning_rate=1e-2",
                                                          "train.early_stopping_patience=0"],
    "width 128 + no early stopping": ["train.network.head.hidden=[128, 128, 128]",
                                     "train.early_stopping_patience=0"],
    "lr 1e-2": ["train.learning_rate=1e-2"],
    "softplus": ["train.network.head.activation=softplus"],
    "depth 6": ["train.network.head.hidden=[64, 64, 64, 64, 64, 64]"],
    "width 256 x 2": ["train.network.head.hidden=[256, 256]"],
    "warm-up 1000 + epochs 40 + no early stopping": ["train.warmup_steps=1000", "train.epochs=40",
                                                     "train.early_stopping_patience=0"],
    "width 128 + warm-up 500 + weight decay 1e-2 + epochs 40 + no early stopping": [
        "train.network.head.hidden=[128, 128, 128]", "train.warmup_steps=500", "train.weight_decay=1e-2",
        "train.epochs=40", "train.early_stopping_patience=0"],
    "warm-up 500 + weight decay 1e-2 + epochs 40 + no early stopping": [
        "train.warmup_steps=500", "train.weight_decay=1e-2", "train.epochs=40", "train.early_stopping_patience=0"],
    "batch 128 + lr 2e-3 + warm-up 500": ["train.batch_size=128", "train.learning_rate=2e-3",
                                          "train.warmup_steps=500"],
    "residual": ["train.network.head.residual=true"],
    "residual + depth 6": ["train.network.head.residual=true",
                           "train.network.head.hidden=[64, 64, 64, 64, 64, 64]"],
    "residual + warm-up 500 + weight decay 1e-2 + epochs 40 + no early stopping": [
        "train.network.head.residual=true", "train.warmup_steps=500", "train.weight_decay=1e-2",
        "train.epochs=40", "train.early_stopping_patience=0"],
    "width 32": ["train.network.head.hidden=[32, 32, 32]"],
    "width 32 + depth 2": ["train.network.head.hidden=[32, 32]"],
    "residual + depth 6 + weight decay 3e-2": ["train.network.head.residual=true",
                                               "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
                                               "train.weight_decay=3e-2"],
    "residual + depth 6 + weight decay 1e-1": ["train.network.head.residual=true",
                                               "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
                                               "train.weight_decay=1e-1"],
    "residual + depth 4 + weight decay 3e-2": ["train.network.head.residual=true",
                                               "train.network.head.hidden=[64, 64, 64, 64]",
                                               "train.weight_decay=3e-2"],
    "residual + depth 6 + weight decay 3e-2 + warm-up 500 + epochs 40 + no early stopping": [
        "train.network.head.residual=true", "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
        "train.weight_decay=3e-2", "train.warmup_steps=500", "train.epochs=40", "train.early_stopping_patience=0"],
    "residual + depth 6 + weight decay 3e-2 + warm-up 500 + epochs 60 + no early stopping": [
        "train.network.head.residual=true", "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
        "train.weight_decay=3e-2", "train.warmup_steps=500", "train.epochs=60", "train.early_stopping_patience=0"],
    "residual + depth 8 + weight decay 3e-2 + warm-up 500 + epochs 40 + no early stopping": [
        "train.network.head.residual=true", "train.network.head.hidden=[64, 64, 64, 64, 64, 64, 64, 64]",
        "train.weight_decay=3e-2", "train.warmup_steps=500", "train.epochs=40", "train.early_stopping_patience=0"],
    "residual + depth 6 + weight decay 3e-2 + warm-up 500 + epochs 40 + no early stopping + batch 512 + lr 1e-2": [
        "train.network.head.residual=true", "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
        "train.weight_decay=3e-2", "train.warmup_steps=500", "train.epochs=40", "train.early_stopping_patience=0",
        "train.batch_size=512", "train.learning_rate=1e-2"],
    "residual + batch 512 + weight decay 3e-2 + warm-up 500": [
        "train.network.head.residual=true", "train.batch_size=512", "train.weight_decay=3e-2",
        "train.warmup_steps=500"],
    "residual + depth 6 + batch 512 + weight decay 3e-2 + warm-up 500": [
        "train.network.head.residual=true", "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
        "train.batch_size=512", "train.weight_decay=3e-2", "train.warmup_steps=500"],
    "residual + depth 6 + batch 512 + weight decay 3e-2 + warm-up 500 + epochs 40 + no early stopping": [
        "train.network.head.residual=true", "train.network.head.hidden=[64, 64, 64, 64, 64, 64]",
        "train.batch_size=512", "train.weight_decay=3e-2", "train.warmup_steps=500", "train.epochs=40",
        "train.early_stopping_patience=0"],
    "old defaults: relu + batch 512 + lr 1e-3": ["train.network.head.activation=relu", "train.batch_size=512",
                                                "train.learning_rate=1e-3"],
    "silu + batch 512 + lr 1e-3 (the defaults with silu)": ["train.batch_size=512", "train.learning_rate=1e-3"],
}


def train(build, campaign, overrides, env):
    """`nsbi train` with the overrides; returns (train.json, wall seconds, CPU seconds, other programs' cores)."""
    command = [os.path.join(build, "jobs", "nsbi"), "train", QUICKSTART, "--force", "--set",
               f"campaign.dir={campaign}"]
    for override in overrides:
        command += ["--set", override]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, (machine_start, ours_start) = time.perf_counter(), cpu_seconds()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds, (machine_end, ours_end) = time.perf_counter() - start, cpu_seconds()
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:])
        raise RuntimeError(f"exit code {done.returncode}: {' '.join(command)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    other = max(0.0, (machine_end - machine_start - (ours_end - ours_start)) / seconds)
    with open(os.path.join(campaign, "train.json")) as f:
        return json.load(f), seconds, cpu, other


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", required=True, help="a Release build folder (with jobs/nsbi)")
    parser.add_argument("--work", help="campaign folder (default: a temporary one, deleted)")
    parser.add_argument("--only", action="append", help="a variant's name (repeatable; default: all)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "quickstart_defaults.json"))
    args = parser.parse_args()
    names = args.only or list(VARIANTS)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(dir=args.work) as campaign:
        nsbi = os.path.join(args.build, "jobs", "nsbi")
        subprocess.run([nsbi, "simulate", QUICKSTART, "--set", f"campaign.dir={campaign}", *SIZES], env=env,
                       check=True, capture_output=True)
        rows = []
        for name in names:
            summary, seconds, cpu, other = train(args.build, campaign, OLD + VARIANTS[name], env)
            row = {"variant": name, "overrides": VARIANTS[name],
                   "exact_log_ratio_rms": summary["diagnostics"]["exact_log_ratio_rms"],
                   "worst_grid_point_rms": summary["diagnostics"]["exact_log_ratio_rms_worst_grid_point"],
                   "training_seconds": summary["training_seconds"], "stage_seconds": seconds, "cpu_seconds": cpu,
                   "other_programs_cores": other}
            rows.append(row)
            print(f"{name:28s} rms {row['exact_log_ratio_rms']:.4f}  worst {row['worst_grid_point_rms']:.4f}  "
                  f"stage {seconds:6.1f} s  CPU {cpu:6.1f} s  other cores {other:.2f}", flush=True)
    write_results(args.out, {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                             "machine": machine(), "base": OLD, "variants": rows})


if __name__ == "__main__":
    main()
