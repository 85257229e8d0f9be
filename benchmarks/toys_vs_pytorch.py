#!/usr/bin/python3
"""Toy-campaign throughput for gaussian2d: nsbi's calibrate stage against the lecture notebooks' PyTorch loop.

Usage: /usr/bin/python3 benchmarks/toys_vs_pytorch.py [--build DIR] [--out FILE] [--points N] [--toys T]
                                                      [--baseline-toys B] [--repetitions R] [--quick]

Measures, in one run, on 2 cores:
  - nsbi: a temporary campaign under /tmp from examples/quickstart.yaml (simulate + train for 2 epochs: the
    architecture matters here, 3 x 64 SiLU, not the accuracy), then the wall time of
    `mpirun -np 2 nsbi calibrate --force` with calibrate.estimators=[learned], infer.refine=false, a calibrate
    grid of N x N points, T toys per point, 20 events per toy, scanned over infer.grid 41 x 37 (quickstart).
    toys/s = all toys / wall time of the command (mpirun start, model load, toy simulation and output
    included: nothing is subtracted), the best of R runs; the stage's own 'calibrate toys: ... in Xs' line
    is recorded too.
  - baseline: today's PyTorch from PyPI (pypi_env.TORCH, in the virtual environment pypi_env.py creates once
    outside the repository; workers run in its interpreter). The same model.h5 in a torch.nn.Sequential, as
    the notebooks compute a toy's q: numpy draws the 20 events, the (20 * 1518, 4) input (events repeated
    over the 1517 scan points plus the toy's true theta) is standardised, one forward pass under
    torch.no_grad, t = -2 sum_events log r, q = t_true - min t. A Python loop over B toys at each calibrate
    grid point (timed after a one-toy warm-up, the best of R loops), in each way (WAYS: f32 and bf16
    autocast, eager and torch.compile; a way that fails is recorded with its error), with 1 and with 2 torch
    threads (each in its own process, OMP_NUM_THREADS and MKL_NUM_THREADS set to match); the comparison uses
    the fastest: PyTorch's faster precision.
  - network rows/s for both: every toy evaluates 20 * 1518 rows (nsbi also evaluates t at the true theta).
  - bench_pairwise (if built): the evaluator's GFLOP/s as a fraction of oneDNN SGEMM at the same shape.
Checks that the baseline computes nsbi's function: torch's log r on a fixed event set against
scripts/nsbi_model.py (float64 numpy, the documented evaluation), |difference| <= 1e-4, and q of a few toys.
Target (issue 16, acceptance 3): nsbi / the baseline's fastest way >= 5 (nsbi evaluates toys in f32: bf16
toys are not offered). Writes benchmarks/results/toys.json and prints a summary; exit code 0 whether or not
the target is met, non-zero when something could not be measured.
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pypi_env
from machine_load import machine, measure_phase

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = 5.0
EVENTS_PER_TOY = 20
# infer.grid of examples/quickstart.yaml: the scan every toy is minimised over.
SCAN = {"mu2": (-1.0, 1.0, 41), "rho12": (-0.9, 0.9, 37)}
BUSY_CORES = 0.1
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def run(command, env=None, cwd=None):
    """Runs a command and returns stdout + stderr; a failure stops the script with the command's output."""
    result = subprocess.run([str(c) for c in command], env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"toys_vs_pytorch.py: '{' '.join(map(str, command))}' failed with exit code "
                 f"{result.returncode}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def worker_json(output):
    """The JSON line a worker printed (torch may add warnings on stderr, which run() appends)."""
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


# --- the PyTorch baseline (runs in a child process per thread count) ---------------------------------------

def torch_model(model_path):
    """model.h5 as torch.nn.Sequential members (docs/formats.md, "Model"), with the standardisation."""
    import h5py
    import torch
    activations = {"relu": torch.nn.ReLU, "silu": torch.nn.SiLU, "tanh": torch.nn.Tanh,
                   "softplus": torch.nn.Softplus}
    with h5py.File(model_path, "r") as f:
        arch = f["architecture"].attrs
        widths = [int(arch["n_inputs"])] + [int(h) for h in arch["hidden"]] + [1]
        mean = torch.tensor(f["standardization/mean"][:], dtype=torch.float32)
        scale = torch.tensor(f["standardization/scale"][:], dtype=torch.float32)
        members = []
        for k in range(int(f.attrs["n_members"])):
            layers = []
            for l in range(len(widths) - 1):
                linear = torch.nn.Linear(widths[l], widths[l + 1])
                with torch.no_grad():
                    linear.weight.copy_(torch.from_numpy(f[f"members/{k}/layer_{l}/weight"][:]))
                    linear.bias.copy_(torch.from_numpy(f[f"members/{k}/layer_{l}/bias"][:]))
                layers.append(linear)
                if l < len(widths) - 2:
                    layers.append(activations[arch["activation"]]())
            members.append(torch.nn.Sequential(*layers).eval())
    return members, mean, scale


def torch_log_r(members, mean, scale, inputs):
    """log r for rows (x, theta) in float32: the logit, or the members' log-mean-exp for an ensemble."""
    import math
    import torch
    u = (inputs - mean) / scale
    logits = torch.cat([m(u) for m in members], dim=1)
    if len(members) == 1:
        return logits[:, 0]
    return torch.logsumexp(logits, dim=1) - math.log(len(members))


def scan_points():
    import numpy as np
    mu2 = np.linspace(*SCAN["mu2"])
    rho12 = np.linspace(*SCAN["rho12"])
    return np.stack(np.meshgrid(mu2, rho12, indexing="ij"), axis=-1).reshape(-1, 2)


def toy_events(rng, theta, n):
    """gaussian2d (docs/simulators.md): x ~ N((0, mu2), [[1, rho], [rho, 1]])."""
    mu2, rho = theta
    return rng.multivariate_normal([0.0, mu2], [[1.0, rho], [rho, 1.0]], size=n)


def toy_q(log_r_of, events, grid_with_truth):
    """q = t(theta_true) - min t over the scan grid and theta_true, t = -2 sum_events log r: one pass of
    `log_r_of` (rows (x, theta) as a float32 tensor -> log r), summed in float64."""
    import numpy as np
    import torch
    n_grid = len(grid_with_truth)
    rows = np.hstack([np.repeat(events, n_grid, axis=0), np.tile(grid_with_truth, (len(events), 1))])
    with torch.no_grad():
        log_r = log_r_of(torch.from_numpy(rows.astype(np.float32)))
    t = -2.0 * log_r.reshape(len(events), n_grid).double().sum(dim=0).numpy()
    return t[-1] - t.min(), t


# The ways the baseline evaluates the network, each timed per thread count: (precision, torch.compile or
# eager). bf16 runs the forward pass under bf16 autocast (the sum over events stays float64).
WAYS = (("f32", False), ("f32", True), ("bf16", False), ("bf16", True))


def baseline_way(members, mean, scale, precision, compiled):
    """The baseline's log r function for one way."""
    import contextlib
    import functools
    import torch
    function = functools.partial(torch_log_r, members, mean, scale)
    if compiled:
        function = torch.compile(function)

    def log_r_of(inputs):
        with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext():
            return function(inputs)
    return log_r_of


def time_way(log_r_of, truths, args):
    """Toys/s of the baseline loop with `log_r_of`: a one-toy warm-up (torch.compile compiles there), then
    the best of args.repetitions loops over args.baseline_toys toys at each point."""
    import numpy as np
    grid = scan_points()
    rng = np.random.default_rng(20261122)
    start = time.perf_counter()
    toy_q(log_r_of, toy_events(rng, truths[0], EVENTS_PER_TOY), np.vstack([grid, truths[0]]))
    first_toy_s = time.perf_counter() - start
    all_seconds = []
    for _ in range(args.repetitions):
        q = []
        start = time.perf_counter()
        for theta in truths:
            grid_with_truth = np.vstack([grid, theta])
            for _ in range(args.baseline_toys):
                events = toy_events(rng, theta, EVENTS_PER_TOY)
                q.append(float(toy_q(log_r_of, events, grid_with_truth)[0]))
        all_seconds.append(time.perf_counter() - start)
    seconds = min(all_seconds)
    n_toys = len(truths) * args.baseline_toys
    return {"toys": n_toys, "seconds": seconds, "seconds_all_repetitions": all_seconds,
            "toys_per_s": n_toys / seconds, "first_toy_s": first_toy_s,
            "q_mean_per_point": [float(np.mean(q[i * args.baseline_toys:(i + 1) * args.baseline_toys]))
                                 for i in range(len(truths))]}


def torch_worker(args):
    """Runs in the PyPI environment's interpreter. Prints JSON: toys/s of the baseline loop in each way
    (WAYS) with `args.torch_worker` threads; a way that fails (torch.compile without a compiler) gives its
    error instead."""
    import torch
    torch.set_num_threads(args.torch_worker)
    members, mean, scale = torch_model(args.model)
    truths = json.loads(args.truths)
    ways = {}
    for precision, compiled in WAYS:
        name = f"{precision}/{'compile' if compiled else 'eager'}"
        try:
            ways[name] = time_way(baseline_way(members, mean, scale, precision, compiled), truths, args)
        except Exception as error:  # noqa: BLE001  (recorded: the way is reported as not working)
            ways[name] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
    print(json.dumps({"threads": args.torch_worker, "torch_threads": torch.get_num_threads(), "ways": ways,
                      "versions": pypi_env.torch_build()}))


def check_baseline(model_path, truths):
    """The baseline's log r and q against scripts/nsbi_model.py (float64 numpy) on the same events."""
    import numpy as np
    import torch
    sys.path.insert(0, str(ROOT / "scripts"))
    import nsbi_model
    reference = nsbi_model.load(model_path)
    members, mean, scale = torch_model(model_path)
    rng = np.random.default_rng(7)
    grid = scan_points()
    # Fixed events against every scan point: 200 x 1517 rows.
    events = toy_events(rng, (0.2, 0.3), 200)
    rows = np.hstack([np.repeat(events, len(grid), axis=0), np.tile(grid, (len(events), 1))])
    with torch.no_grad():
        ours = torch_log_r(members, mean, scale, torch.from_numpy(rows.astype(np.float32))).double().numpy()
    exact = reference.log_ratio(rows[:, :2], rows[:, 2:])
    log_r_diff = float(np.max(np.abs(ours - exact)))
    q_diffs = []
    for theta in truths[:3]:
        toy = toy_events(rng, theta, EVENTS_PER_TOY)
        grid_with_truth = np.vstack([grid, theta])
        q_torch, _ = toy_q(baseline_way(members, mean, scale, "f32", False), toy, grid_with_truth)
        log_r = reference.log_ratio(np.repeat(toy, len(grid_with_truth), axis=0),
                                    np.tile(grid_with_truth, (len(toy), 1)))
        t = -2.0 * log_r.reshape(len(toy), len(grid_with_truth)).sum(axis=0)
        q_diffs.append(abs(float(q_torch) - float(t[-1] - t.min())))
    return {"rows": len(rows), "max_abs_log_r_diff": log_r_diff, "log_r_tolerance": 1e-4,
            "max_abs_q_diff": max(q_diffs), "q_tolerance": 2 * EVENTS_PER_TOY * 1e-4 * 2,
            "passed": log_r_diff <= 1e-4 and max(q_diffs) <= 2 * EVENTS_PER_TOY * 1e-4 * 2}


def check_worker(args):
    """Runs in the PyPI environment's interpreter: prints check_baseline's JSON."""
    print(json.dumps(check_baseline(args.model, json.loads(args.truths))))


# --- nsbi ----------------------------------------------------------------------------------------------------

def nsbi_campaign(nsbi, directory):
    """simulate + train from the quickstart: the 3 x 64 SiLU model that calibrate evaluates."""
    command = [nsbi, "run", ROOT / "examples" / "quickstart.yaml", "--set", "pipeline=[simulate,train]",
               "--set", "train.epochs=2", "--set", f"campaign.dir={directory}"]
    run(command, env={**os.environ, **MPI_ENV})
    return command


def calibrate_command(nsbi, directory, points, toys):
    return ["mpirun", "-np", "2", "--oversubscribe", nsbi, "calibrate", ROOT / "examples" / "quickstart.yaml",
            "--set", f"campaign.dir={directory}", "--set", "calibrate.estimators=[learned]",
            "--set", "infer.refine=false", "--set", f"calibrate.n_toys={toys}",
            "--set", f"calibrate.n_events={EVENTS_PER_TOY}",
            "--set", f"calibrate.grid.mu2.points={points}", "--set", f"calibrate.grid.rho12.points={points}",
            "--force"]


def run_calibrate(command, repetitions):
    """The best wall time of `repetitions` runs (each --force: all toys recomputed), and its log line."""
    runs = []
    for _ in range(repetitions):
        start = time.perf_counter()
        output = run(command, env={**os.environ, **MPI_ENV})
        seconds = time.perf_counter() - start
        line = [l for l in output.splitlines() if re.match(r"calibrate toys: \d+ toys in", l)]
        runs.append({"seconds": seconds, "log_line": line[-1] if line else None})
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "seconds_all_repetitions": [r["seconds"] for r in runs]}


def calibrate_results(directory):
    import h5py
    import numpy as np
    with h5py.File(directory / "results.h5", "r") as f:
        mu2 = f["calibrate/grid/mu2"][:]
        rho12 = f["calibrate/grid/rho12"][:]
        q = f["calibrate/learned/q_toys"][:]
    truths = [[float(a), float(b)] for a in mu2 for b in rho12]
    return truths, [float(v) for v in np.mean(q, axis=1)]


# --- bench_pairwise ------------------------------------------------------------------------------------------

def pairwise_fraction(build):
    binary = build / "benchmarks" / "bench_pairwise"
    if not binary.exists():
        return {"skipped": f"{binary} not built"}
    out = run([binary, "--benchmark_format=json", "--benchmark_filter=silu_3x64|sgemm/64x64"])
    data = json.loads(out[out.index("{"):out.rindex("}") + 1])
    gflops = {}
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            gflops[b["name"]] = b["GFLOP/s"]
    fractions = {}
    for name, value in gflops.items():
        # Names carry a /threads:N suffix only when the benchmark was registered with thread counts.
        match = re.match(r"pairwise/silu_3x64/block:(\d+)(/threads:\d+)?$", name)
        if match:
            sgemm = [v for n, v in gflops.items() if n == f"sgemm/64x64/m:{match[1]}{match[2] or ''}"]
            if sgemm:
                fractions[name] = {"gflops": value, "sgemm_gflops": sgemm[0], "fraction": value / sgemm[0]}
    return {"command": f"{binary} --benchmark_filter=silu_3x64|sgemm/64x64", "gflops": gflops,
            "fraction_of_sgemm": fractions}


def n_weights(model_path):
    import h5py
    with h5py.File(model_path, "r") as f:
        arch = f["architecture"].attrs
        widths = [int(arch["n_inputs"])] + [int(h) for h in arch["hidden"]] + [1]
        return sum(a * b for a, b in zip(widths, widths[1:])), str(arch["activation"]), widths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=pathlib.Path, required=True, help="a Release build folder (with jobs/nsbi)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "toys.json")
    parser.add_argument("--points", type=int, default=3, help="calibrate grid points per axis (N x N)")
    parser.add_argument("--toys", type=int, default=400, help="toys per calibrate grid point")
    parser.add_argument("--baseline-toys", type=int, default=50,
                        help="toys per grid point for the baseline loop (it reports a rate)")
    parser.add_argument("--repetitions", type=int, default=3,
                        help="runs of nsbi calibrate and of each baseline loop; the best counts")
    parser.add_argument("--quick", action="store_true", help="2 x 2 points, 20 toys, 1 repetition (smoke test)")
    parser.add_argument("--torch-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--check-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--truths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        torch_worker(args)
        return
    if args.check_worker:
        check_worker(args)
        return
    if args.quick:
        args.points, args.toys, args.baseline_toys, args.repetitions = 2, 20, 20, 1
    nsbi = args.build / "jobs" / "nsbi"
    if not nsbi.exists():
        sys.exit(f"toys_vs_pytorch.py: no {nsbi} (build the nsbi target in {args.build})")
    python = pypi_env.ensure("torch", pypi_env.TORCH)
    load_before = os.getloadavg()
    directory = pathlib.Path(tempfile.mkdtemp(prefix="nsbi-toys-", dir="/tmp"))
    try:
        campaign = directory / "campaign"
        setup_command, _ = measure_phase("nsbi: simulate + train the quickstart model", nsbi_campaign, nsbi,
                                         campaign)
        model_path = campaign / "model.h5"
        weights, activation, widths = n_weights(model_path)
        command = calibrate_command(nsbi, campaign, args.points, args.toys)
        nsbi_run, nsbi_phase = measure_phase("nsbi: calibrate on 2 ranks", run_calibrate, command,
                                             args.repetitions)
        truths, nsbi_q_mean = calibrate_results(campaign)
        worker = [python, __file__, "--model", str(model_path), "--truths", json.dumps(truths)]
        output, _ = measure_phase("baseline: check log r and q against scripts/nsbi_model.py", run,
                                  worker + ["--check-worker"])
        check = worker_json(output)
        baseline, phases = {}, {"nsbi_calibrate": nsbi_phase}
        for threads in (1, 2):
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            timing = worker + ["--torch-worker", str(threads), "--baseline-toys", str(args.baseline_toys),
                               "--repetitions", str(args.repetitions)]
            output, phases[f"baseline_{threads}_threads"] = measure_phase(
                f"baseline: PyTorch, {threads} thread(s)", run, timing, env)
            baseline[threads] = worker_json(output)
        pairwise, phases["bench_pairwise"] = measure_phase("bench_pairwise", pairwise_fraction, args.build)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    rows_per_toy = EVENTS_PER_TOY * (SCAN["mu2"][2] * SCAN["rho12"][2] + 1)
    flops_per_row = 2 * weights
    n_toys = args.points * args.points * args.toys
    nsbi_toys_s = n_toys / nsbi_run["seconds"]

    def figures(toys_s):
        return {"toys_per_s": toys_s, "rows_per_s": toys_s * rows_per_toy,
                "gflops": toys_s * rows_per_toy * flops_per_row * 1e-9}

    # Every way that worked, and the fastest per precision (over ways and thread counts): the anchor is the
    # faster of those.
    measured = [{**way, "precision": name.split("/")[0], "way": name, "threads": threads}
                for threads, b in baseline.items() for name, way in b["ways"].items() if "toys_per_s" in way]
    if not measured:
        sys.exit(f"toys_vs_pytorch.py: no way of running the baseline worked: {baseline}")
    best_by_precision = {p: max((m for m in measured if m["precision"] == p), key=lambda m: m["toys_per_s"])
                         for p in sorted({m["precision"] for m in measured})}
    best = max(best_by_precision.values(), key=lambda m: m["toys_per_s"])
    ratio = nsbi_toys_s / best["toys_per_s"]
    result = {
        "benchmark": "toys_vs_pytorch",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {"python": sys.version.split()[0], "pytorch_python": python, **baseline[1]["versions"]},
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "setup": {"simulator": "gaussian2d", "network": {"widths": widths, "activation": activation,
                                                         "n_weights": weights},
                  "calibrate_grid_points": args.points * args.points, "toys_per_point": args.toys,
                  "events_per_toy": EVENTS_PER_TOY, "repetitions": args.repetitions,
                  "baseline_toys_per_point": args.baseline_toys, "scan_grid": "41 x 37 = 1517 (+ the true theta)",
                  "rows_per_toy": rows_per_toy, "refine": False},
        "nsbi": {"ranks": 2, "toys": n_toys, "wall_seconds": nsbi_run["seconds"],
                 "log_line": nsbi_run["log_line"], **figures(nsbi_toys_s),
                 "q_mean_per_point": nsbi_q_mean},
        "baseline": {f"{t}_threads": {name: {**way, **figures(way["toys_per_s"])} if "toys_per_s" in way else way
                                      for name, way in b["ways"].items()} for t, b in baseline.items()},
        "baseline_best_by_precision": {p: {"way": m["way"], "threads": m["threads"], **figures(m["toys_per_s"])}
                                       for p, m in best_by_precision.items()},
        "baseline_check": check,
        "ratio": ratio, "ratio_uses": f"baseline {best['way']} with {best['threads']} thread(s)", "target": TARGET,
        "target_met": ratio >= TARGET,
        "bench_pairwise": pairwise,
        "phases": phases,
        "warning": any(p["other_programs_cores"] > BUSY_CORES for p in phases.values()),
        "commands": {"setup": " ".join(map(str, setup_command)), "nsbi": " ".join(map(str, command)),
                     "baseline": f"{python} {__file__} --torch-worker THREADS (internal)",
                     "script": " ".join([sys.executable] + sys.argv)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nnsbi calibrate, 2 ranks: {n_toys} toys in {nsbi_run['seconds']:.2f} s wall = {nsbi_toys_s:.1f} "
          f"toys/s, {nsbi_toys_s * rows_per_toy / 1e6:.2f} M rows/s   [{nsbi_run['log_line']}]")
    for t, b in baseline.items():
        for name, way in b["ways"].items():
            if "toys_per_s" not in way:
                print(f"baseline {name}, {t} thread(s): failed: {way['error']}")
                continue
            print(f"baseline {name}, {t} thread(s): {way['toys']} toys in {way['seconds']:.2f} s = "
                  f"{way['toys_per_s']:.2f} toys/s, {way['toys_per_s'] * rows_per_toy / 1e6:.2f} M rows/s")
    print(f"ratio nsbi / best baseline: {ratio:.2f} (target >= {TARGET}): {'PASS' if ratio >= TARGET else 'MISS'}")
    print(f"baseline check: max |log r torch - numpy| = {check['max_abs_log_r_diff']:.2e}, max |q diff| = "
          f"{check['max_abs_q_diff']:.2e}: {'ok' if check['passed'] else 'FAILED'}")
    for name, f in pairwise.get("fraction_of_sgemm", {}).items():
        print(f"bench_pairwise {name}: {f['gflops']:.1f} GFLOP/s = {100 * f['fraction']:.0f} % of SGEMM")
    for name, p in phases.items():
        if p["other_programs_cores"] > BUSY_CORES:
            print(f"WARNING: other programs kept {p['other_programs_cores']:.2f} cores busy during {name}")
    print(f"wrote {args.out}")
    if not check["passed"]:
        sys.exit("toys_vs_pytorch.py: the baseline does not compute nsbi's function")


if __name__ == "__main__":
    main()
