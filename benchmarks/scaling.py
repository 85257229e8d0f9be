#!/usr/bin/python3
"""Weak and strong scaling of the simulate, train and calibrate stages over 1, 2, 4, ... MPI ranks, written to
benchmarks/results/scaling.json and a plot next to it (docs/scaling.md explains the figures and how to run
this on a cluster).

Each point runs the real `nsbi` stage under mpirun:
  simulate   particle_chain (mode full), whose simulation is the stage's work (gaussian2d's kernels produce
             ~150 M events/s per core, faster than a disk takes them: its stage measures the file system, see
             simulate_throughput.py). Weak: --simulate-rows per rank; strong: that many rows times the largest
             rank count, on every rank count. The rate is the stage's own events/s (simulate.json: blocks
             simulated and written with collective parallel HDF5, MPI start-up excluded).
The train and calibrate points use a gaussian2d campaign:
  train      weak: a global batch of --batch-per-rank examples per rank; strong: the batch of the largest rank
             count on every rank count; --train-steps optimizer steps, one thread per rank. The rate is
             train.json's step_samples_per_second (the optimizer steps alone); its allreduce_share is the
             share of the step time spent in the gradient allreduce (waiting for the slowest rank included).
  calibrate  weak: --toy-points grid points per rank, each with --toys toys; strong: the points of the largest
             rank count on every rank count. The rate is toys per second of the whole command's wall time
             (MPI start-up and model loading included: the same few tenths of a second on any rank count).
Weak efficiency = rate(N) / (N rate(1)); strong efficiency = time(1) / (N time(N)) = rate(N) / (N rate(1)) for
the same work. The best of --repetitions runs is kept (the machine may be shared). It reports, it does not
assert: the exit code is non-zero only when something could not be measured.

Usage: benchmarks/scaling.py --build BUILD [--ranks 1,2] [--work DIR] [--out FILE] [--quick]
"""

import argparse
import datetime
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine_load import mpirun, pyplot, run_logged, write_results  # noqa: E402
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def campaign(directory, rows, batch, steps, points, toys):
    """A gaussian2d campaign whose sizes the scaling points set."""
    return f"""campaign: {{name: scaling, seed: 99, dir: {directory}}}
simulator: {{name: gaussian2d}}
simulate:
  n_samples: {rows}
  block_size: 65536
  reference: {{theta: {{mu2: 0, rho12: 0}}, n_samples: {max(rows // 4, 1000)}}}
  observed: {{theta: {{mu2: 0.3, rho12: 0.4}}, n_events: 20}}
train:
  network: {{head: {{hidden: [64, 64, 64], activation: silu}}}}
  batch_size: {batch}
  epochs: 1000
  max_steps: {steps}
  early_stopping_patience: 0
  validation_fraction: 0.05
  n_shards: 16
  checkpoint_every: 100000
  diagnostics: {{grid_points: 2, n_events: 100}}
calibrate:
  estimators: [learned]
  grid: {{mu2: {{min: -0.5, max: 0.5, points: {points}}}, rho12: {{values: [0.0]}}}}
  n_toys: {toys}
  toys_per_item: 25
infer:
  grid: {{mu2: {{min: -1, max: 1, points: 41}}, rho12: {{min: -0.9, max: 0.9, points: 37}}}}
"""


def simulate_campaign(directory, rows):
    """A particle_chain campaign of `rows` events (no reference, no observed data)."""
    return f"""campaign: {{name: scaling, seed: 99, dir: {directory}}}
simulator: {{name: particle_chain, mode: full}}
simulate: {{n_samples: {rows}, block_size: 65536}}
"""


def nsbi(build, ranks, stage, config, *extra):
    return run_logged(mpirun(ranks, os.path.join(build, "jobs", "nsbi"), stage, config, *extra), ENV)


def summary(directory, stage):
    with open(os.path.join(directory, f"{stage}.json")) as f:
        return json.load(f)


def point(args, stage, kind, ranks, largest):
    """One measurement: the stage's rate (and for train its allreduce share) on `ranks` ranks."""
    share = ranks if kind == "weak" else largest
    rows = args.simulate_rows * share
    batch = args.batch_per_rank * share
    points = args.toy_points * share
    best = None
    for repetition in range(args.repetitions):
        directory = os.path.join(args.work, f"{stage}-{kind}-{ranks}-{repetition}")
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        config = os.path.join(directory, "campaign.yaml")
        # train and calibrate read a dataset and a model: made once per size on the most ranks, untimed.
        train_rows = max(args.simulate_rows, 64 * batch)
        with open(config, "w") as f:
            f.write(simulate_campaign(directory, rows) if stage == "simulate" else
                    campaign(directory, train_rows, batch, args.train_steps, points, args.toys))
        if stage != "simulate":
            nsbi(args.build, largest, "simulate", config)
        if stage == "calibrate":
            nsbi(args.build, largest, "train", config, "--set", f"train.batch_size={16 * 32}",
                 "--set", "train.max_steps=200")
        seconds = nsbi(args.build, ranks, stage, config, "--force")
        s = summary(directory, stage)
        if stage == "simulate":
            measured = {"rate": s["dataset"]["events_per_second"], "unit": "events/s", "work": rows,
                        "write_share": s["dataset"]["write_seconds"] / s["dataset"]["seconds"]}
        elif stage == "train":
            measured = {"rate": s["step_samples_per_second"], "unit": "samples/s",
                        "work": batch * args.train_steps, "allreduce_share": s["allreduce_share"],
                        "global_batch": batch}
        else:
            measured = {"rate": points * args.toys / seconds, "unit": "toys/s", "work": points * args.toys,
                        "seconds": seconds}
        if best is None or measured["rate"] > best["rate"]:
            best = measured
    best.update({"stage": stage, "kind": kind, "ranks": ranks})
    print(f"{stage:9} {kind:6} {ranks} rank(s): {best['rate']:.4g} {best['unit']}", flush=True)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True)
    parser.add_argument("--ranks", default=",".join(str(r) for r in [1, 2, 4, 8, 16, 32, 64]
                                                    if r <= (os.cpu_count() or 1)))
    parser.add_argument("--work", default="/tmp/nsbi-scaling")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "scaling.json"))
    parser.add_argument("--simulate-rows", type=int, default=4_000_000)
    parser.add_argument("--batch-per-rank", type=int, default=512)
    parser.add_argument("--train-steps", type=int, default=1500)
    parser.add_argument("--toy-points", type=int, default=4)
    parser.add_argument("--toys", type=int, default=400)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--stages", default="simulate,train,calibrate")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the machine")
    args = parser.parse_args()
    if args.quick:
        args.simulate_rows, args.train_steps, args.toys, args.repetitions = 100_000, 100, 50, 1
    args.build = os.path.abspath(args.build)
    ranks = [int(r) for r in args.ranks.split(",")]
    largest = max(ranks)

    points = []
    for stage in args.stages.split(","):
        for kind in ("weak", "strong"):
            for n in ranks:
                points.append(point(args, stage, kind, n, largest))

    efficiency = []
    for stage in args.stages.split(","):
        for kind in ("weak", "strong"):
            base = next(p for p in points if p["stage"] == stage and p["kind"] == kind and p["ranks"] == ranks[0])
            for p in points:
                if p["stage"] == stage and p["kind"] == kind:
                    # Rates per rank count relative to the first (normally 1 rank): per-rank rate ratio.
                    e = (p["rate"] / p["ranks"]) / (base["rate"] / base["ranks"])
                    p["efficiency"] = e
                    efficiency.append({"stage": stage, "kind": kind, "ranks": p["ranks"], "efficiency": e})
    print("\nstage      kind    " + "  ".join(f"{n:>6} rk" for n in ranks))
    for stage in args.stages.split(","):
        for kind in ("weak", "strong"):
            row = [p for p in points if p["stage"] == stage and p["kind"] == kind]
            print(f"{stage:10} {kind:6}  " + "  ".join(f"{100 * p['efficiency']:8.1f}%" for p in row))
    for p in points:
        if p["stage"] == "simulate":
            print(f"simulate {p['kind']:6} {p['ranks']} rank(s): writes and checkpoints {100 * p['write_share']:.1f} % "
                  f"of the stage's time")
        if p["stage"] == "train" and p.get("allreduce_share") is not None:
            print(f"train {p['kind']:6} {p['ranks']} rank(s): allreduce {100 * p['allreduce_share']:.1f} % of the "
                  f"step time (global batch {p['global_batch']})")

    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    result = {"benchmark": "scaling", "date": datetime.datetime.utcnow().isoformat() + "Z",
              "command": " ".join(sys.argv), "cpus": os.cpu_count(), "load_average_at_end": load,
              "settings": {k: v for k, v in vars(args).items() if k not in ("build", "work", "out")},
              "points": points, "efficiency": efficiency}
    write_results(args.out, result)
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for stage in args.stages.split(","):
        for kind, style in (("weak", "-o"), ("strong", "--s")):
            row = [p for p in points if p["stage"] == stage and p["kind"] == kind]
            ax.plot([p["ranks"] for p in row], [100 * p["efficiency"] for p in row], style, label=f"{stage} {kind}")
    ax.axhline(90, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("parallel efficiency (%)")
    ax.set_title("nsbi stages: weak and strong scaling")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.splitext(args.out)[0] + ".png", dpi=120)
    print("wrote", os.path.splitext(args.out)[0] + ".png")


if __name__ == "__main__":
    main()
