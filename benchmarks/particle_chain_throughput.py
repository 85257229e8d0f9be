#!/usr/bin/python3
"""particle_chain's simulation throughput per rank against a plain-Python version of the same chain, and its
weak scaling from 1 to 2 ranks.

Usage: /usr/bin/python3 benchmarks/particle_chain_throughput.py BUILD_DIR [--out FILE] [--quick]

Measures, in one run:
  1. events/s of the full chain (mode full, theta from the default proposal) on one rank: nsbi
     (bench_simulators' simulate_block/particle_chain, plain and with gold) and the per-event recursive
     Python implementation below (`random` and `math` only, the model of docs/simulators.md), and their ratio;
  2. weak scaling of the kernel from 1 to 2 MPI ranks (simulate_scaling particle_chain);
  3. a cross-check of the two implementations at fixed (kappa, lambda): mean leaves per jet before the
     detector, <cos theta_J1>, <m_jj> and <j1_n_constituents> (bench_simulators' particle_chain_at against the
     Python version), in standard errors of the Python means.
Writes everything to one JSON file and prints a table. It reports, it does not assert: the exit code is 0
when a target is missed, and non-zero only when something could not be measured.
"""

import os

CHILD_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from machine_load import busy_warning, cpu_seconds, machine, measure_phase, mpirun  # noqa: E402

REQUIRED_RATIO = 100.0
REQUIRED_EFFICIENCY = 0.9
BUSY_CORES = 0.1
BLOCK_SIZE = 1 << 16
SEED = 20261122
# (kappa, lambda) of the cross-check: bench_simulators' particle_chain_at/<10 kappa>/<10 lambda>.
CHECK_POINTS = ((0.8, 0.5), (0.8, 1.5), (0.8, 3.0), (-0.8, 1.5))
AGREEMENT_PULL = 4.0  # standard errors

# --- the chain in plain Python (docs/simulators.md, particle_chain) ---------------------------------------

M_X = 200.0
JET_ENERGY = M_X / 2
T0 = 30.0 ** 2
T_CUT = 2.5 ** 2
R_MAX = 1.0 - 1e-3
JET_MOMENTUM = math.sqrt(JET_ENERGY ** 2 - T0)


def detector(rng, e, px, py, pz, out):
    """A leaf as the detector sees it, appended to out as (E', unit direction), or nothing if lost."""
    if e < 1.0:
        return
    e_smeared = e * (1.0 + math.sqrt(0.25 / e + 0.03 ** 2) * rng.gauss(0.0, 1.0))
    if e_smeared <= 0.0:
        return
    theta = math.acos(max(-1.0, min(1.0, pz / math.sqrt(px * px + py * py + pz * pz))))
    phi = math.atan2(py, px)
    theta += rng.gauss(0.0, 0.01)
    phi += rng.gauss(0.0, 0.01)
    out.append((e_smeared, math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)))


def shower(rng, e, px, py, pz, t, lam, norm, out):
    """Splits the node recursively; the leaves go through the detector into out. Returns (leaves, N_d, R)."""
    if t <= T_CUT:
        detector(rng, e, px, py, pz, out)
        return 1, 0, 0.0
    r_left = -math.log(1.0 - rng.random() * norm) / lam
    r_right = -math.log(1.0 - rng.random() * norm) / lam
    t_left = r_left * t
    m = math.sqrt(t)
    t_right = r_right * (m - math.sqrt(t_left)) ** 2
    cos_n = 2.0 * rng.random() - 1.0
    sin_n = math.sqrt(1.0 - cos_n * cos_n)
    azimuth = 2.0 * math.pi * rng.random()
    nx, ny, nz = sin_n * math.cos(azimuth), sin_n * math.sin(azimuth), cos_n
    kallen = t * t + t_left * t_left + t_right * t_right - 2 * (t * t_left + t * t_right + t_left * t_right)
    p_star = math.sqrt(max(kallen, 0.0)) / (2 * m)
    results = []
    for sign, e_star, t_child in ((1.0, (t + t_left - t_right) / (2 * m), t_left),
                                  (-1.0, (t - t_left + t_right) / (2 * m), t_right)):
        kx, ky, kz = sign * p_star * nx, sign * p_star * ny, sign * p_star * nz
        pk = px * kx + py * ky + pz * kz
        coefficient = pk / (m * (e + m)) + e_star / m
        results.append(shower(rng, (e * e_star + pk) / m, kx + px * coefficient, ky + py * coefficient,
                              kz + pz * coefficient, t_child, lam, norm, out))
    (leaves_l, draws_l, r_l), (leaves_r, draws_r, r_r) = results
    return leaves_l + leaves_r, 2 + draws_l + draws_r, r_left + r_right + r_l + r_r


def jet_observables(constituents):
    e = sum(c[0] for c in constituents)
    px = sum(c[0] * c[1] for c in constituents)
    py = sum(c[0] * c[2] for c in constituents)
    pz = sum(c[0] * c[3] for c in constituents)
    p = math.sqrt(px * px + py * py + pz * pz)
    width = 0.0
    if p > 0:
        for c in constituents:
            width += c[0] * math.acos(max(-1.0, min(1.0, (c[1] * px + c[2] * py + c[3] * pz) / p)))
    mass = math.sqrt(max(e * e - p * p, 0.0))
    lead = max((c[0] for c in constituents), default=0.0)
    return {"e": e, "p": (px, py, pz), "cos_theta": pz / p if p > 0 else 0.0, "mass": mass,
            "n": len(constituents), "lead": lead / e if e > 0 else 0.0, "width": width / e if e > 0 else 0.0}


def simulate_event(rng, kappa, lam):
    """One event: the 10 observables and the leaves per jet (before the detector)."""
    a = 2 * kappa / (1 + kappa * kappa)
    while True:
        c = 2.0 * rng.random() - 1.0
        if rng.random() * (2 + 2 * abs(a)) < 1 + c * c + 2 * a * c:
            break
    phi = 2.0 * math.pi * rng.random()
    sin_theta = math.sqrt(1.0 - c * c)
    axis = (sin_theta * math.cos(phi), sin_theta * math.sin(phi), c)
    norm = 1.0 - math.exp(-lam * R_MAX)
    jets, leaves = [], []
    for sign in (1.0, -1.0):  # jet 1 along +n before the label swap
        constituents = []
        n_leaves, _, _ = shower(rng, JET_ENERGY, sign * JET_MOMENTUM * axis[0], sign * JET_MOMENTUM * axis[1],
                                sign * JET_MOMENTUM * axis[2], T0, lam, norm, constituents)
        leaves.append(n_leaves)
        jets.append(jet_observables(constituents))
    if rng.random() < 0.2:
        jets.reverse()
    j1, j2 = jets
    e = j1["e"] + j2["e"]
    p = [a + b for a, b in zip(j1["p"], j2["p"])]
    m_jj = math.sqrt(max(e * e - sum(v * v for v in p), 0.0))
    x = [j1["cos_theta"], m_jj] + [j[k] for j in (j1, j2) for k in ("mass", "n", "lead", "width")]
    return x, leaves


def python_throughput(events, repetitions):
    """Best events/s over repetitions of `events` events, theta ~ the default proposal (uniform box)."""
    rng = random.Random(SEED)
    best = 0.0
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(events):
            simulate_event(rng, rng.uniform(-1.0, 1.0), rng.uniform(0.5, 3.0))
        best = max(best, events / (time.perf_counter() - start))
    return {"events_per_second": best, "events": events, "repetitions": repetitions}


def python_means(kappa, lam, events):
    rng = random.Random(SEED + 1)
    columns = {"leaves_per_jet": [], "mean_cos_theta_j1": [], "mean_m_jj": [], "mean_j1_n_constituents": []}
    for _ in range(events):
        x, leaves = simulate_event(rng, kappa, lam)
        columns["leaves_per_jet"].append(0.5 * (leaves[0] + leaves[1]))
        columns["mean_cos_theta_j1"].append(x[0])
        columns["mean_m_jj"].append(x[1])
        columns["mean_j1_n_constituents"].append(x[3])
    out = {}
    for key, values in columns.items():
        mean = sum(values) / len(values)
        variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        out[key] = {"mean": mean, "standard_error": math.sqrt(variance / len(values))}
    return out


# --- nsbi ---------------------------------------------------------------------------------------------------

def run(command):
    result = subprocess.run([str(c) for c in command], env=CHILD_ENV, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"particle_chain_throughput.py: '{' '.join(map(str, command))}' failed with exit code "
                 f"{result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def bench(build, benchmark_filter, repetitions, min_time):
    output = run([build / "benchmarks" / "bench_simulators", "--benchmark_format=json",
                  f"--benchmark_filter={benchmark_filter}", f"--benchmark_repetitions={repetitions}",
                  f"--benchmark_min_time={min_time}"])
    runs = [b for b in json.loads(output)["benchmarks"] if b.get("run_type") == "iteration"]
    if not runs:
        sys.exit(f"particle_chain_throughput.py: bench_simulators reported nothing for '{benchmark_filter}'")
    return runs


def nsbi_throughput(build, quick):
    out = {}
    for kind in ("simulate_block", "simulate_gold_block"):
        runs = bench(build, f"^{kind}/particle_chain/", 2 if quick else 5, 0.2 if quick else 1.0)
        best = max(runs, key=lambda b: b["items_per_second"])
        rates = sorted(b["items_per_second"] for b in runs)
        out[kind] = {"events_per_second": best["items_per_second"],
                     "median_events_per_second": rates[len(rates) // 2],
                     "cpu_share": best["cpu_time"] / best["real_time"], "repetitions": len(runs),
                     "block_size": BLOCK_SIZE}
    return out


def nsbi_means(build, quick):
    runs = bench(build, "^particle_chain_at/", 1, 0.2 if quick else 0.5)
    out = {}
    for b in runs:
        kappa, lam = (int(v) / 10 for v in b["name"].split("/")[1:3])
        out[(kappa, lam)] = {key: b[key] for key in
                             ("leaves_per_jet", "mean_cos_theta_j1", "mean_m_jj", "mean_j1_n_constituents",
                              "events", "items_per_second")}
    return out


def kernel_scaling(build, quick):
    """Best rate per rank on 1 and 2 ranks over trials; more trials while other programs disturb them."""
    events = (1 << 18) if quick else (1 << 20)
    repetitions = 2 if quick else 3
    quiet_needed, max_trials = (1, 2) if quick else (2, 5)
    command = [build / "benchmarks" / "simulate_scaling", "particle_chain", events, repetitions, BLOCK_SIZE]
    best = {1: 0.0, 2: 0.0}
    trials = quiet = 0
    others = []
    while quiet < quiet_needed and trials < max_trials:
        start, (machine_start, ours_start) = time.perf_counter(), cpu_seconds()
        rates = {ranks: json.loads(run(mpirun(ranks, *command)))["events_per_second_per_rank"]
                 for ranks in (1, 2)}
        seconds, (machine_end, ours_end) = time.perf_counter() - start, cpu_seconds()
        other = max(0.0, (machine_end - machine_start - (ours_end - ours_start)) / seconds)
        others.append(other)
        best = {ranks: max(best[ranks], rates[ranks]) for ranks in best}
        trials += 1
        quiet += other <= BUSY_CORES
    efficiency = best[2] / best[1]
    return {"events_per_rank": events, "block_size": BLOCK_SIZE, "repetitions": repetitions, "trials": trials,
            "undisturbed_trials": quiet, "other_programs_cores_per_trial": others,
            "events_per_second_per_rank": {"1": best[1], "2": best[2]}, "efficiency": efficiency,
            "required_efficiency": REQUIRED_EFFICIENCY, "pass": efficiency >= REQUIRED_EFFICIENCY}


def cross_check(build, quick):
    cpp = nsbi_means(build, quick)
    events = 500 if quick else 3000
    rows = []
    for kappa, lam in CHECK_POINTS:
        py = python_means(kappa, lam, events)
        for key, value in py.items():
            pull = (value["mean"] - cpp[(kappa, lam)][key]) / value["standard_error"]
            rows.append({"kappa": kappa, "lambda": lam, "quantity": key, "python": value["mean"],
                         "python_standard_error": value["standard_error"], "nsbi": cpp[(kappa, lam)][key],
                         "nsbi_events": cpp[(kappa, lam)]["events"], "pull": pull,
                         "agree": abs(pull) < AGREEMENT_PULL})
    return {"python_events_per_point": events, "rows": rows, "agree": all(r["agree"] for r in rows)}


# --- report -------------------------------------------------------------------------------------------------

def verdict(passed):
    return "PASS" if passed else "MISS"


def print_report(report):
    machine, load = report["machine"], report["load_average"]
    quick = " [--quick]" if report["quick"] else ""
    print(f"\nparticle_chain on {machine['cpu_model']} ({machine['nproc']} cores){quick}")
    print(f"load average before / after: {load['before']} / {load['after']}; cores used by other programs: " +
          ", ".join(f"{label} {p['other_programs_cores']:.2f}" for label, p in report["phases"].items()))
    t = report["throughput"]
    print("\nThroughput per rank (events/s, best of repetitions; theta from the default proposal)")
    print(f"  nsbi simulate        {t['nsbi']['simulate_block']['events_per_second']:12.4g}")
    print(f"  nsbi simulate_gold   {t['nsbi']['simulate_gold_block']['events_per_second']:12.4g}")
    print(f"  plain Python         {t['python']['events_per_second']:12.4g}")
    print(f"  nsbi / Python        {t['ratio']:12.1f}   required >= {REQUIRED_RATIO:g}  {verdict(t['pass'])}")
    s = report["kernel_scaling"]
    rates = s["events_per_second_per_rank"]
    print(f"\nWeak scaling 1 -> 2 ranks ({s['events_per_rank']} events per rank, {s['trials']} trials): "
          f"{rates['1']:.4g} -> {rates['2']:.4g} events/s per rank, efficiency {s['efficiency']:.1%} "
          f"(required >= {REQUIRED_EFFICIENCY:.0%})  {verdict(s['pass'])}")
    c = report["cross_check"]
    print(f"\nnsbi against the Python chain ({c['python_events_per_point']} Python events per point)")
    print(f"  {'kappa':>6} {'lambda':>6}  {'quantity':<24} {'nsbi':>10} {'Python':>10} {'+-':>8} {'pull':>6}")
    for r in c["rows"]:
        print(f"  {r['kappa']:6.1f} {r['lambda']:6.1f}  {r['quantity']:<24} {r['nsbi']:10.4f} "
              f"{r['python']:10.4f} {r['python_standard_error']:8.4f} {r['pull']:6.2f}"
              f"{'' if r['agree'] else '  DISAGREE'}")
    print("  (docs/simulators.md: 13.2 / 10.6 / 8.2 leaves per jet at lambda = 0.5 / 1.5 / 3; "
          f"<cos theta_J1> = 0.3 a(kappa) = {0.3 * 2 * 0.8 / 1.64:+.4f} at kappa = +0.8)")
    if report["warning"]:
        print(f"\nWARNING: {report['warning']}")
    print("\nTargets: " + ", ".join(f"{t['name']} {verdict(t['pass'])}" for t in report["targets"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=pathlib.Path, help="a Release build directory of nsbi")
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent / "results" / "particle_chain.json")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test")
    args = parser.parse_args()
    build = args.build_dir.resolve()
    for binary in ("benchmarks/bench_simulators", "benchmarks/simulate_scaling"):
        if not (build / binary).is_file():
            sys.exit(f"particle_chain_throughput.py: {build / binary} not found: build nsbi in Release first")

    report = {"benchmark": "particle_chain",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "quick": args.quick, "machine": machine(), "python": sys.version.split()[0],
              "load_average": {"before": [round(x, 2) for x in os.getloadavg()]}}
    phases = {}

    def throughput():
        nsbi = nsbi_throughput(build, args.quick)
        python = python_throughput(300 if args.quick else 2000, 2 if args.quick else 3)
        ratio = nsbi["simulate_block"]["events_per_second"] / python["events_per_second"]
        return {"nsbi": nsbi, "python": python, "ratio": ratio, "required_ratio": REQUIRED_RATIO,
                "pass": ratio >= REQUIRED_RATIO}

    report["throughput"], phases["throughput"] = measure_phase("throughput per rank", throughput)
    report["kernel_scaling"], phases["kernel_scaling"] = measure_phase(
        "weak scaling 1 -> 2 ranks", kernel_scaling, build, args.quick)
    report["cross_check"], phases["cross_check"] = measure_phase("nsbi against the Python chain", cross_check,
                                                                 build, args.quick)
    report["load_average"]["after"] = [round(x, 2) for x in os.getloadavg()]
    report["phases"] = phases
    report["warning"] = busy_warning(phases, BUSY_CORES)
    report["targets"] = [
        {"name": f"nsbi/Python >= {REQUIRED_RATIO:g}", "pass": report["throughput"]["pass"]},
        {"name": f"weak scaling >= {REQUIRED_EFFICIENCY:.0%}", "pass": report["kernel_scaling"]["pass"]},
        {"name": f"nsbi and Python agree within {AGREEMENT_PULL:g} standard errors",
         "pass": report["cross_check"]["agree"]}]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
