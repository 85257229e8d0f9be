#!/usr/bin/python3
"""nsbi against sbi 0.27 (NRE and NPE) on four sbibm tasks: C2ST against sbibm's reference posteriors and the
wall time of each whole run (simulate, train, sample), written to benchmarks/results/sbibm.json.

Tasks (benchmarks/sbibm_tasks.py): gaussian_mixture (2-D), gaussian_linear_uniform (10-D), bernoulli_glm (10-D,
correlated normal prior: nsbi works in whitened coordinates) and gaussian_linear (10-D, normal prior). For each
simulation budget N and task, with the same numpy simulator on both sides (every row from its own Philox stream):

- nsbi, its recommended method (docs/statistics.md, "Recommended method"): `nsbi run` simulates N rows
  through the external-simulator protocol (benchmarks/sbibm_simulator.py) and trains with `reference:
  marginal`, `loss: nre_c`; then one `nsbi infer` per observation (`posterior: mcmc`, 40 chains × 250 draws
  after 500 warm-up iterations: 10,000 samples). MPI ranks: --ranks (2).
- sbi's `NRE` (NRE-B in 0.27) and `NPE` (NPE-C), every setting at sbi's default; the same prior and
  simulator, N simulations, 10,000 samples per observation; one process with --threads torch threads (2).

Each posterior is scored with `nsbi c2st REFERENCE SAMPLES` (sbibm's definition, docs/statistics.md) against
sbibm's 10,000 reference samples; a method's score is the mean over the observations ± its standard error
(sd / √observations). Its seconds are the wall time of simulate + train + all observations' sampling; the
C2STs are not counted (they run in one background process, concurrently with the next runs, so the timings
share the machine with them; every run records the cores other processes kept busy).

Usage: benchmarks/sbibm_comparison.py --build BUILD [--work DIR] [--tasks a,b] [--sizes 1e3,1e4]
       [--observations 5] [--methods nsbi,sbi_nre,sbi_npe] [--ranks 2] [--threads 2] [--out FILE]
       benchmarks/sbibm_comparison.py --table [--out FILE]   (the Markdown table of a results file)
       benchmarks/sbibm_comparison.py --collect [--work DIR] [--out FILE]   (C2STs finished after it was written)
The sbi environment is created by benchmarks/pypi_env.py (sbi 0.27.0 on PyTorch 2.15.0, and the sbibm 1.1.0
package without its dependencies, read only for its files). It reports, it does not assert.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sbibm_tasks  # noqa: E402

SBI_REQUIREMENTS = ["torch==2.15.0", "sbi==0.27.0"]
SBIBM = ["sbibm==1.1.0"]
SAMPLES = 10000
MCMC = {"chains": 40, "warmup": 500, "samples": 250}  # 40 × 250 = SAMPLES kept draws


def recommended_train(n):
    """nsbi's recommended training recipe for N simulations (docs/statistics.md, "Recommended method"): about
    4000 steps of 128 rows (at least 20 epochs), early stopping after a tenth of the epochs (at least 10)."""
    epochs = max(20, -(-4000 * 128 // int(0.8 * n)))
    return {"reference": "marginal", "loss": "nre_c", "contrastive_classes": 5, "contrastive_gamma": 1,
            "network": "{head: {hidden: [64, 64, 64], activation: silu}}", "batch_size": 256,
            "epochs": epochs, "learning_rate": 2e-3, "validation_fraction": 0.2,
            "early_stopping_patience": max(10, epochs // 10), "n_shards": 4,
            "chunk_rows": max(8, min(4096, n // 64)), "diagnostics": "{grid_points: 1, n_events: 1000}"}


def config_text(task, n, directory, simulator_command, seed):
    proposal = "\n".join(f"    {name}: {entry}" for name, entry in task.nsbi_prior().items())
    train = "\n".join(f"  {key}: {value}" for key, value in recommended_train(n).items())
    command = ", ".join(simulator_command)
    return f"""campaign: {{name: sbibm-{task.name}-{n}, seed: {seed}, dir: {directory}}}
simulator: {{name: external, command: [{command}], timeout_seconds: 600}}
simulate:
  n_samples: {n}
  block_size: {min(n, 8192)}
  proposal:
{proposal}
train:
{train}
infer:
  observed: observed_1.csv
  posterior: mcmc
  mcmc: {{chains: {MCMC['chains']}, warmup: {MCMC['warmup']}, samples: {MCMC['samples']}}}
pipeline: [simulate, train]
"""


def samples_path(work, task, method, n, k):
    """Where a run's posterior samples of observation k are written (their C2ST goes next to them)."""
    return os.path.join(work, task, f"{method}-{n}", f"samples_{k}.csv")


def write_csv(path, values, names):
    np.savetxt(path, np.atleast_2d(values), delimiter=",", header=",".join(names), comments="", fmt="%.9g")


def prepare_task(name, sbibm_dir, work, observations, sbi_python):
    """Copies sbibm's observations and reference samples of `name` into work/<name>/ as CSV files with nsbi's
    column names; returns the task and the folder."""
    files = os.path.join(sbibm_dir, "tasks", name, "files")
    folder = os.path.join(work, name)
    os.makedirs(folder, exist_ok=True)
    design = None
    if name == "bernoulli_glm":
        design_path = os.path.join(folder, "design.npy")
        code = ("import sys, numpy, torch; numpy.save(sys.argv[2], "
                "torch.load(sys.argv[1], weights_only=True).double().numpy())")
        subprocess.run([sbi_python, "-c", code, os.path.join(files, "design_matrix.pt"), design_path], check=True)
        design = np.load(design_path)
    task = sbibm_tasks.make(name, design)
    for k in range(1, observations + 1):
        obs = os.path.join(files, f"num_observation_{k}")
        x = np.loadtxt(os.path.join(obs, "observation.csv"), delimiter=",", skiprows=1, ndmin=2)
        write_csv(os.path.join(folder, f"observed_{k}.csv"), x, task.observable_names())
        reference = np.loadtxt(os.path.join(obs, "reference_posterior_samples.csv.bz2"), delimiter=",", skiprows=1)
        write_csv(os.path.join(folder, f"reference_{k}.csv"), reference, task.parameter_names())
    return task, folder


class C2stQueue:
    """`nsbi c2st REFERENCE SAMPLES --out SAMPLES.c2st.json` of each run's observations in one background
    thread, one at a time."""

    def __init__(self, nsbi):
        self.nsbi, self.jobs, self.lock, self.thread = nsbi, [], threading.Lock(), None

    def add(self, reference, samples):
        with self.lock:
            self.jobs.append((reference, samples))
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run)
            self.thread.start()

    def _run(self):
        while True:
            with self.lock:
                if not self.jobs:
                    return
                reference, samples = self.jobs.pop(0)
            subprocess.run([self.nsbi, "c2st", reference, samples, "--out", samples + ".c2st.json"], check=True,
                           capture_output=True)
            print(f"c2st of {samples} done", flush=True)

    def wait(self):
        while self.thread is not None and self.thread.is_alive():
            self.thread.join()


def run_nsbi(task, n, folder, args, nsbi, env):
    """nsbi's whole run; returns the seconds and the samples' CSV per observation."""
    from machine_load import mpirun, run_logged
    directory = os.path.join(folder, f"nsbi-{n}")
    os.makedirs(directory, exist_ok=True)
    command = ["/usr/bin/python3", os.path.join(HERE, "sbibm_simulator.py"), task.name]
    if task.design is not None:
        command.append(os.path.join(folder, "design.npy"))
    config = os.path.join(directory, "campaign.yaml")
    with open(config, "w") as f:
        f.write(config_text(task, n, directory, command, args.seed))
    for k in range(1, args.observations + 1):
        subprocess.run(["cp", os.path.join(folder, f"observed_{k}.csv"), directory], check=True)
    seconds = {"simulate_train": run_logged(mpirun(args.ranks, nsbi, "run", config, "--force"), env),
               "infer": 0.0}
    samples = {}
    for k in range(1, args.observations + 1):
        seconds["infer"] += run_logged(mpirun(args.ranks, nsbi, "infer", config, "--force", "--set",
                                              f"infer.observed=observed_{k}.csv"), env)
        import h5py
        with h5py.File(os.path.join(directory, "results.h5"), "r") as f:
            theta = task.to_task(f["infer/learned/posterior_samples"][...])
        samples[k] = samples_path(args.work, task.name, "nsbi", n, k)
        write_csv(samples[k], theta, task.parameter_names())
    return seconds, samples


def run_sbi(task, n, folder, method, args, sbi_python):
    """sbi's whole run in the sbi environment (--sbi-worker); returns the seconds and the samples' CSVs."""
    directory = os.path.join(folder, f"{method}-{n}")
    os.makedirs(directory, exist_ok=True)
    start = time.time()
    subprocess.run([sbi_python, os.path.abspath(__file__), "--sbi-worker", "--tasks", task.name, "--sizes", str(n),
                    "--methods", method, "--work", folder, "--observations", str(args.observations),
                    "--threads", str(args.threads), "--seed", str(args.seed)], check=True)
    print(f"[0] {time.time() - start:7.1f} s  {method} {task.name} N = {n}", flush=True)
    with open(os.path.join(directory, "seconds.json")) as f:
        seconds = json.load(f)
    return seconds, {k: samples_path(args.work, task.name, method, n, k) for k in range(1, args.observations + 1)}


def sbi_worker(args):
    """Runs in the sbi environment: simulate, train and sample one sbi method, timing each phase."""
    import torch
    from sbi.inference import NPE, NRE
    from sbi.utils import BoxUniform
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    name, n, method = args.tasks, int(float(args.sizes)), args.methods
    design = np.load(os.path.join(args.work, "design.npy")) if name == "bernoulli_glm" else None
    task = sbibm_tasks.make(name, design)
    directory = os.path.join(args.work, f"{method}-{n}")
    seconds = {}
    start = time.time()
    theta = task.sample_prior(np.random.default_rng(args.seed), n)
    x = task.simulate(theta, 0, args.seed)
    seconds["simulate"] = time.time() - start
    if task.prior_kind == "uniform":
        prior = BoxUniform(torch.full((task.dim,), task.low), torch.full((task.dim,), task.high))
    else:
        prior = torch.distributions.MultivariateNormal(torch.zeros(task.dim),
                                                       torch.tensor(task.prior_covariance(), dtype=torch.float32))
    os.chdir(directory)  # sbi writes its TensorBoard logs to ./sbi-logs
    start = time.time()
    inference = (NRE if method == "sbi_nre" else NPE)(prior=prior, show_progress_bars=False)
    inference.append_simulations(torch.tensor(theta, dtype=torch.float32), torch.tensor(x, dtype=torch.float32))
    inference.train()
    posterior = inference.build_posterior()
    seconds["train"] = time.time() - start
    start = time.time()
    for k in range(1, args.observations + 1):
        observed = np.loadtxt(os.path.join(args.work, f"observed_{k}.csv"), delimiter=",", skiprows=1, ndmin=2)
        samples = posterior.sample((SAMPLES,), x=torch.tensor(observed, dtype=torch.float32),
                                   show_progress_bars=False)
        write_csv(samples_path(os.path.dirname(args.work), name, method, n, k), samples.numpy(),
                  task.parameter_names())
    seconds["sample"] = time.time() - start
    with open(os.path.join(directory, "seconds.json"), "w") as f:
        json.dump(seconds, f)


def summary(results, work):
    """Fills the C2ST per observation, mean and standard error of every run whose C2STs are all written."""
    for run in results:
        if not run.get("completed", True):
            continue  # stopped by hand: no samples to score
        paths = [samples_path(work, run["task"], run["method"], run["n_simulations"], k) + ".c2st.json"
                 for k in run["observations"]]
        if not all(os.path.exists(path) for path in paths):
            continue
        scores = []
        for path in paths:
            with open(path) as f:
                scores.append(json.load(f)["accuracy"])
        run["c2st"] = scores
        run["c2st_mean"] = float(np.mean(scores))
        run["c2st_standard_error"] = float(np.std(scores, ddof=1) / np.sqrt(len(scores)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--work", default="/tmp/nsbi-sbibm")
    parser.add_argument("--tasks", default=",".join(sbibm_tasks.TASKS))
    parser.add_argument("--sizes", default="1e3")
    parser.add_argument("--observations", type=int, default=5)
    parser.add_argument("--methods", default="nsbi,sbi_nre,sbi_npe")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "sbibm.json"))
    parser.add_argument("--table", action="store_true", help="print --out's table and stop")
    parser.add_argument("--collect", action="store_true",
                        help="fill --out's C2STs from those finished under --work since it was written, print its table")
    parser.add_argument("--sbi-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work = os.path.abspath(args.work)  # the sbi worker changes its directory
    if args.sbi_worker:
        return sbi_worker(args)
    if args.table:
        return print(table(args.out))
    if args.collect:
        with open(args.out) as f:
            result = json.load(f)
        summary(result["runs"], args.work)
        from machine_load import write_results
        write_results(args.out, result)
        return print(table(args.out))

    import pypi_env
    from machine_load import cpu_seconds, machine, write_results
    sbi_python = pypi_env.ensure("sbi", SBI_REQUIREMENTS, no_deps=SBIBM)
    sbibm_dir = subprocess.run([sbi_python, "-c", "import importlib.util; print(importlib.util.find_spec("
                                "'sbibm').submodule_search_locations[0])"], capture_output=True, text=True,
                               check=True).stdout.strip()
    nsbi = os.path.abspath(os.path.join(args.build, "jobs", "nsbi"))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    queue, results = C2stQueue(nsbi), []
    versions = pypi_env.versions(sbi_python, ["sbi", "torch"])

    def write():
        """The results so far (a run's C2ST once all its observations' are done)."""
        summary(results, args.work)
        write_results(args.out, {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "command": " ".join(sys.argv), "versions": versions,
            "nsbi": {"ranks": args.ranks, "mcmc": MCMC,
                     "train": {n: recommended_train(n) for n in sizes}},
            "sbi": {"threads": args.threads, "methods": {"sbi_nre": "sbi.inference.NRE (NRE_B), defaults",
                                                         "sbi_npe": "sbi.inference.NPE (NPE_C), defaults"}},
            "posterior_samples": SAMPLES, "seed": args.seed, "runs": results})
    for name in args.tasks.split(","):
        task, folder = prepare_task(name, sbibm_dir, args.work, args.observations, sbi_python)
        for n in sizes:
            for method in args.methods.split(","):
                start, (machine_start, ours_start) = time.time(), cpu_seconds()
                if method == "nsbi":
                    seconds, samples = run_nsbi(task, n, folder, args, nsbi, env)
                else:
                    seconds, samples = run_sbi(task, n, folder, method, args, sbi_python)
                wall = time.time() - start
                machine_end, ours_end = cpu_seconds()
                other = max(0.0, (machine_end - machine_start - (ours_end - ours_start)) / wall)
                results.append({"task": name, "n_simulations": n, "method": method, "seconds": wall,
                                "phase_seconds": seconds, "other_processes_cores": other,
                                "observations": list(range(1, args.observations + 1))})
                for k, path in samples.items():
                    queue.add(os.path.join(folder, f"reference_{k}.csv"), path)
                write()
    queue.wait()
    write()
    print(table(args.out))


def table(path):
    """The results file's runs as the Markdown table of benchmarks/README.md: one row per task and N, C2ST
    (mean ± standard error over the observations) and seconds of each method."""
    with open(path) as f:
        runs = json.load(f)["runs"]
    methods = list(dict.fromkeys(run["method"] for run in runs))
    lines = ["| task | N | " + " | ".join(f"{m} C2ST | {m} s" for m in methods) + " |",
             "|---|---|" + "---|---|" * len(methods)]
    for task, n in dict.fromkeys((run["task"], run["n_simulations"]) for run in runs):
        cells = []
        for method in methods:
            run = next((r for r in runs if (r["task"], r["n_simulations"], r["method"]) == (task, n, method)), None)
            if run is not None and not run.get("completed", True):  # stopped by hand: its note says why
                cells += ["not finished", f"> {run['seconds_at_least']:.0f}"]
                continue
            score = "–" if run is None or "c2st_mean" not in run else \
                f"{run['c2st_mean']:.3f} ± {run['c2st_standard_error']:.3f}"
            cells += [score, "–" if run is None else f"{run['seconds']:.0f}"]
        lines.append(f"| {task} | {n:.0e} | ".replace("e+0", "e") + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
