#!/usr/bin/python3
"""lensing's simulation throughput per core against the numpy reference (lensing_numpy.py), the weak scaling of
`nsbi simulate` from 1 to 2 ranks, and the memory and file size of a large campaign.

Usage: /usr/bin/python3 benchmarks/lensing_throughput.py BUILD_DIR [--out FILE] [--quick] [--full]

Measures, in one run:
  1. ms per image on one core, two workloads: (a) theta = (0.05, -1.9) with every host quantity fixed
     (~97 subhalos per image): nsbi's bench_simulators lensing_stage/stage:0, with the shares of its stages
     (deflections, source, PSF, noise: stages 1-4); (b) theta from the default proposal (uniform) and the host
     drawn per image (~455 subhalos on average): bench_simulators simulate_block/lensing/64. numpy: the same
     workloads in blocks of B images for several B, one thread; the fastest B is numpy's figure. The ratio is
     numpy's ms per image over nsbi's (target >= 10, aim 30).
  2. weak scaling 1 -> 2 ranks, efficiency = 2-rank / 1-rank images/s per rank: (a) of the kernel (the
     target, >= 90 %): benchmarks' simulate_scaling, workload b without file I/O, 2048 images per rank in
     blocks of 64, the best of 3 repetitions each timed by its slowest rank; (b) of the whole `nsbi simulate`
     stage, reported beside it: workload a (images of about equal cost), HDF5 output included, 8192 images
     on 1 rank against 16384 on 2 (runs of ~4 s, so that the once-per-run costs of opening and closing the
     file collectively do not stand for the scaling), the stage's own images/s per rank (simulate.json), the
     best of 2 trials.
  3. a large campaign of workload a on 2 ranks: peak RSS per rank (simulate.json's largest ru_maxrss over
     ranks, and the largest process under mpirun from /usr/bin/time) and dataset.h5's size. 1e5 images with
     --full (a few minutes, 1.7 GB in a temporary folder), 4000 by default, 256 with --quick.
Writes one JSON file and prints a table. It reports, it does not assert: the exit code is 0 when a target is
missed, and non-zero only when something could not be measured (a failed or timed-out program).
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # numpy on one thread: the comparison is per core
CHILD_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import lensing_numpy as L  # noqa: E402
from machine_load import busy_warning, machine, measure_phase, mpirun  # noqa: E402

np = L.np
REQUIRED_RATIO, AIMED_RATIO = 10.0, 30.0
REQUIRED_EFFICIENCY = 0.9
BUSY_CORES = 0.1
STAGES = ("whole_image", "deflections", "source", "psf", "noise")  # bench_simulators lensing_stage/stage:k
FIXED_CAMPAIGN = "[lens_redshift, velocity_dispersion, source_offset]"


def run(command, timeout=None):
    """Runs command; RuntimeError (with its output's tail) when it fails or outlives timeout seconds."""
    line = " ".join(map(str, command))
    try:
        result = subprocess.run([str(c) for c in command], env=CHILD_ENV, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"'{line}' did not finish in {timeout} s")
    if result.returncode != 0:
        raise RuntimeError(f"'{line}' failed with exit code {result.returncode}:\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


# --- per core ----------------------------------------------------------------------------------------------


def bench(build, benchmark_filter, repetitions, min_time):
    output = run([build / "benchmarks" / "bench_simulators", "--benchmark_format=json",
                  f"--benchmark_filter={benchmark_filter}", f"--benchmark_repetitions={repetitions}",
                  f"--benchmark_min_time={min_time}"]).stdout
    runs = [b for b in json.loads(output)["benchmarks"] if b.get("run_type") == "iteration"]
    if not runs:
        raise RuntimeError(f"bench_simulators reported nothing for '{benchmark_filter}'")
    return runs


def nsbi_per_core(build, quick):
    """Best ms per image of each lensing_stage and of simulate_block/lensing/64."""
    repetitions, min_time = (2, 0.2) if quick else (5, 1.0)
    stages = {}
    for b in bench(build, "^lensing_stage/", repetitions, min_time):
        stage = STAGES[int(re.search(r"stage:(\d+)", b["name"]).group(1))]
        ms = 1e3 / b["items_per_second"]
        if stage not in stages or ms < stages[stage]["ms_per_image"]:
            stages[stage] = {"ms_per_image": ms, "cpu_share": b["cpu_time"] / b["real_time"]}
            if "ns_per_pair" in b:
                stages[stage]["ns_per_pixel_subhalo_pair"] = b["ns_per_pair"]
    whole = stages["whole_image"]["ms_per_image"]
    for stage in STAGES[1:]:
        stages[stage]["share"] = stages[stage]["ms_per_image"] / whole
    blocks = bench(build, "^simulate_block/lensing/", 1 if quick else 3, min_time)
    best = min(blocks, key=lambda b: b["real_time"])
    default = {"ms_per_image": 1e3 / best["items_per_second"], "cpu_share": best["cpu_time"] / best["real_time"],
               "repetitions": len(blocks)}
    return {"fixed_host_theta0": stages, "default_proposal_drawn_host": default}


def numpy_per_core(quick):
    """ms per image of the two workloads; the block size B chosen on the first (the fastest of several)."""
    n, repetitions = (16, 1) if quick else (64, 3)
    blocks = (1, 4, 8, 16) if quick else (1, 2, 4, 8, 16, 32)
    by_block = L.time_blocks(blocks, n, L.THETA_REFERENCE, L.FIXED_HOST, repetitions)
    best = min(by_block, key=by_block.get)
    rng = np.random.default_rng(7)
    theta = np.column_stack([rng.uniform(0.001, 0.2, n), rng.uniform(-2.5, -1.5, n)])  # the default proposal
    drawn = L.time_blocks([best], n, theta, L.DRAWN_HOST, repetitions)[best]
    return {"fixed_host_theta0": {"ms_per_image_by_block": by_block, "best_block": best,
                                  "ms_per_image": by_block[best]},
            "default_proposal_drawn_host": {"block": best, "images": n, "ms_per_image": drawn},
            "numpy": np.__version__}


def per_core(build, quick):
    nsbi, numpy = nsbi_per_core(build, quick), numpy_per_core(quick)
    ratios = {"fixed_host_theta0": numpy["fixed_host_theta0"]["ms_per_image"]
              / nsbi["fixed_host_theta0"]["whole_image"]["ms_per_image"],
              "default_proposal_drawn_host": numpy["default_proposal_drawn_host"]["ms_per_image"]
              / nsbi["default_proposal_drawn_host"]["ms_per_image"]}
    return {"nsbi": nsbi, "numpy": numpy, "ratio": ratios, "required_ratio": REQUIRED_RATIO,
            "aimed_ratio": AIMED_RATIO, "pass": min(ratios.values()) >= REQUIRED_RATIO}


# --- the simulate stage ------------------------------------------------------------------------------------


def simulate(build, work, name, ranks, images, fixed):
    """`nsbi simulate` of a lensing campaign: the default one (uniform theta, drawn host), or with fixed=True
    theta = (0.05, -1.9) and the host fixed; its simulate.json, the largest process RSS under mpirun (MiB) and
    dataset.h5's size."""
    directory = work / name
    config = work / f"{name}.yaml"
    simulator, proposal = "{name: lensing}", ""
    if fixed:
        simulator = f"{{name: lensing, fixed: {FIXED_CAMPAIGN}}}"
        proposal = ", proposal: {f_sub: {kind: fixed, value: 0.05}, beta: {kind: fixed, value: -1.9}}"
    config.write_text(f"campaign: {{seed: 11, dir: {directory}}}\nsimulator: {simulator}\n"
                      f"simulate: {{n_samples: {images}, block_size: 64{proposal}}}\n")
    result = run(["/usr/bin/time", "-v", *mpirun(ranks, build / "jobs" / "nsbi", "simulate", config, "--force")],
                 timeout=60 + 0.05 * images / ranks)  # 50 ms per image: over 10 times the expected time
    rss_kib = max(int(v) for v in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr))
    summary = json.loads((directory / "simulate.json").read_text())
    return {"ranks": ranks, "images": images, "seconds": summary["dataset"]["seconds"],
            "images_per_second_per_rank": summary["dataset"]["events_per_second"] / ranks,
            "peak_rss_mib_per_rank": summary["peak_rss_mib_per_rank"], "max_process_rss_mib": rss_kib / 1024,
            "file_bytes": (directory / "dataset.h5").stat().st_size}


def kernel_scaling(build, quick):
    """simulate_scaling's images/s per rank on 1 and 2 ranks (default proposal, drawn host, no file I/O)."""
    per_rank, repetitions = (64, 1) if quick else (2048, 3)
    runs = {}
    for ranks in (1, 2):
        out = run(mpirun(ranks, build / "benchmarks" / "simulate_scaling", "lensing", per_rank, repetitions, 64),
                  timeout=60 + 0.1 * per_rank * repetitions).stdout
        runs[str(ranks)] = json.loads(out.strip().splitlines()[-1])
    efficiency = (runs["2"]["events_per_second_per_rank"] / runs["1"]["events_per_second_per_rank"])
    return {"images_per_rank": per_rank, "repetitions": repetitions, "runs": runs, "efficiency": efficiency}


def weak_scaling(build, work, quick):
    kernel = kernel_scaling(build, quick)
    per_rank = 128 if quick else 8192
    trials = 1 if quick else 2
    best = {1: None, 2: None}
    for _ in range(trials):
        for ranks in (1, 2):
            r = simulate(build, work, f"scaling{ranks}", ranks, per_rank * ranks, True)
            if best[ranks] is None or r["images_per_second_per_rank"] > best[ranks]["images_per_second_per_rank"]:
                best[ranks] = r
    stage = {"images_per_rank": per_rank, "trials": trials, "runs": {"1": best[1], "2": best[2]},
             "efficiency": best[2]["images_per_second_per_rank"] / best[1]["images_per_second_per_rank"]}
    return {"kernel": kernel, "simulate_stage": stage, "required_efficiency": REQUIRED_EFFICIENCY,
            "pass": kernel["efficiency"] >= REQUIRED_EFFICIENCY}


def large_campaign(build, work, images):
    r = simulate(build, work, "large", 2, images, True)
    r["file_gib"] = r["file_bytes"] / 2 ** 30
    r["bytes_per_image"] = r["file_bytes"] / images
    return r


# --- report -------------------------------------------------------------------------------------------------


def verdict(passed):
    return "NOT MEASURED" if passed is None else "PASS" if passed else "MISS"


def print_report(report):
    m, load = report["machine"], report["load_average"]
    print(f"\nlensing on {m['cpu_model']} ({m['nproc']} cores){' [--quick]' if report['quick'] else ''}")
    print(f"load average before / after: {load['before']} / {load['after']}; cores used by other programs: " +
          ", ".join(f"{label} {p['other_programs_cores']:.2f}" for label, p in report["phases"].items()))
    if "per_core" in report:
        print_per_core(report["per_core"])
    if "weak_scaling" in report:
        print_scaling(report["weak_scaling"])
    if "large_campaign" in report:
        print_large(report["large_campaign"])
    for key, error in report["errors"].items():
        print(f"\n{key} FAILED: {error}")
    if report["warning"]:
        print(f"\nWARNING: {report['warning']}")


def print_per_core(c):
    stages = c["nsbi"]["fixed_host_theta0"]
    print("\nms per image on one core (best of repetitions)")
    print(f"  theta0, host fixed:    nsbi {stages['whole_image']['ms_per_image']:8.3f}   numpy "
          f"{c['numpy']['fixed_host_theta0']['ms_per_image']:8.3f} (B = {c['numpy']['fixed_host_theta0']['best_block']})"
          f"   numpy / nsbi {c['ratio']['fixed_host_theta0']:6.2f}")
    print(f"  uniform theta, drawn:  nsbi {c['nsbi']['default_proposal_drawn_host']['ms_per_image']:8.3f}   numpy "
          f"{c['numpy']['default_proposal_drawn_host']['ms_per_image']:8.3f}"
          f"            numpy / nsbi {c['ratio']['default_proposal_drawn_host']:6.2f}")
    print(f"  required >= {REQUIRED_RATIO:g} (aim {AIMED_RATIO:g})  {verdict(c['pass'])}")
    print("  numpy by block size: " + ", ".join(
        f"B={b}: {ms:.2f}" for b, ms in c["numpy"]["fixed_host_theta0"]["ms_per_image_by_block"].items()))
    print("  nsbi's stages (theta0, host fixed): " + ", ".join(
        f"{s} {stages[s]['ms_per_image']:.3f} ms ({stages[s]['share']:.1%})" for s in STAGES[1:]) +
        f"; {stages['deflections'].get('ns_per_pixel_subhalo_pair', float('nan')):.2f} ns per pixel-subhalo pair")


def print_scaling(s):
    k, stage = s["kernel"], s["simulate_stage"]
    print(f"\nweak scaling 1 -> 2 ranks of the kernel (simulate_scaling, drawn hosts, {k['images_per_rank']} "
          f"images per rank): {k['runs']['1']['events_per_second_per_rank']:.4g} -> "
          f"{k['runs']['2']['events_per_second_per_rank']:.4g} images/s per rank, efficiency {k['efficiency']:.1%} "
          f"(required >= {REQUIRED_EFFICIENCY:.0%})  {verdict(s['pass'])}")
    one, two = stage["runs"]["1"], stage["runs"]["2"]
    print(f"  the nsbi simulate stage (theta0, host fixed, file included, {stage['images_per_rank']} images per "
          f"rank): {one['images_per_second_per_rank']:.4g} -> {two['images_per_second_per_rank']:.4g} images/s "
          f"per rank, efficiency {stage['efficiency']:.1%}")


def print_large(g):
    print(f"\nnsbi simulate, {g['images']} images on 2 ranks: {g['seconds']:.1f} s, peak RSS per rank "
          f"{g['peak_rss_mib_per_rank']:.1f} MiB (largest process {g['max_process_rss_mib']:.1f} MiB), "
          f"dataset.h5 {g['file_gib']:.3f} GiB ({g['bytes_per_image']:.0f} bytes per image)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=pathlib.Path, help="a Release build directory of nsbi")
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent / "results" / "lensing.json")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test")
    size.add_argument("--full", action="store_true", help="the large campaign at 1e5 images")
    args = parser.parse_args()
    build = args.build_dir.resolve()
    for binary in ("benchmarks/bench_simulators", "benchmarks/simulate_scaling", "jobs/nsbi"):
        if not (build / binary).is_file():
            sys.exit(f"lensing_throughput.py: {build / binary} not found: build nsbi in Release first")

    report = {"benchmark": "lensing", "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "quick": args.quick, "full": args.full, "machine": machine(), "python": sys.version.split()[0],
              "load_average": {"before": [round(x, 2) for x in os.getloadavg()]}}
    phases, errors = {}, {}
    images = 100000 if args.full else 256 if args.quick else 4000
    with tempfile.TemporaryDirectory(prefix="nsbi-lensing-") as scratch:
        work = pathlib.Path(scratch)
        for key, label, function, arguments in (
                ("per_core", "ms per image on one core", per_core, (build, args.quick)),
                ("weak_scaling", "weak scaling, 1 -> 2 ranks", weak_scaling, (build, work, args.quick)),
                ("large_campaign", f"nsbi simulate, {images} images on 2 ranks", large_campaign,
                 (build, work, images))):
            try:
                report[key], phases[key] = measure_phase(label, function, *arguments)
            except RuntimeError as error:  # recorded; the other parts still run
                errors[key] = str(error)
                print(f"{label}: FAILED: {error}", file=sys.stderr)
    report["errors"] = errors
    report["load_average"]["after"] = [round(x, 2) for x in os.getloadavg()]
    report["phases"] = phases
    report["warning"] = busy_warning(phases, BUSY_CORES)
    report["targets"] = [
        {"name": f"numpy/nsbi per core >= {REQUIRED_RATIO:g}", "pass": report.get("per_core", {}).get("pass")},
        {"name": f"weak scaling >= {REQUIRED_EFFICIENCY:.0%}", "pass": report.get("weak_scaling", {}).get("pass")}]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print("\nTargets: " + ", ".join(f"{t['name']} {verdict(t['pass'])}" for t in report["targets"]))
    print(f"\nwrote {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
