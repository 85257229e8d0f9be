"""Helpers shared by the benchmark scripts: how busy other programs kept the machine during a phase (on a
shared 2-core machine they lower the figures, so every result records it), and writing results and plots."""

import json
import os
import resource
import subprocess
import sys
import time


def cpu_seconds():
    """CPU seconds used so far by the whole machine and by this script with its finished children."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    machine = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    ours = sum(usage.ru_utime + usage.ru_stime
               for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
    return machine, ours


def measure_phase(label, function, *args):
    """function(*args), its wall time, and the cores other programs kept busy meanwhile."""
    print(f"{label} ...", flush=True)
    start, (machine_start, ours_start) = time.perf_counter(), cpu_seconds()
    result = function(*args)
    seconds, (machine_end, ours_end) = time.perf_counter() - start, cpu_seconds()
    other = (machine_end - machine_start - (ours_end - ours_start)) / seconds
    return result, {"seconds": seconds, "other_programs_cores": max(0.0, other)}


def busy_warning(phases, threshold=0.1):
    """The warning a result carries when other programs kept more than threshold cores busy in a phase (each
    phase as measure_phase returns it), or None."""
    busy = {label: p["other_programs_cores"] for label, p in phases.items() if p["other_programs_cores"] > threshold}
    if not busy:
        return None
    return ("other programs ran on this machine during the benchmark (cores they kept busy: " +
            ", ".join(f"{label} {cores:.2f}" for label, cores in busy.items()) + "): its figures, above all the "
            "scaling efficiency, are lower than on a quiet machine")


def write_results(path, result):
    """Writes a benchmark's result dict as indented JSON (creating the folder) and says so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote", path)


def pyplot():
    """matplotlib's pyplot on the Agg backend, or None (with a message) when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return None
    return plt


# The CPU flags that decide which GEMM kernels oneDNN (nsbi's and PyTorch's) can run, f32 and bf16.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def machine():
    """The CPU model, its GEMM-relevant ISA flags (ISA_FLAGS: present or not), core count and host name,
    recorded with every result."""
    model, flags = "unknown", set()
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("Flags:"):
            flags = set(line.split(":", 1)[1].split())
    return {"cpu_model": model, "isa_flags": {flag: flag in flags for flag in ISA_FLAGS},
            "nproc": os.cpu_count(), "hostname": os.uname().nodename}


def mpirun(ranks, *command):
    """The argv of `command` on `ranks` MPI ranks (oversubscribing: the benchmarks may ask for more than the cores)."""
    return ["mpirun", "-np", str(ranks), "--oversubscribe", *map(str, command)]


def run_logged(command, env):
    """Runs `command`, printing its exit code, seconds and command line; on failure prints its output's tail and
    raises RuntimeError. Returns the seconds it took."""
    start = time.time()
    result = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True)
    seconds = time.time() - start
    print(f"[{result.returncode}] {seconds:7.1f} s  {' '.join(map(str, command))}", flush=True)
    if result.returncode != 0:
        print((result.stdout + result.stderr)[-3000:], file=sys.stderr)
        raise RuntimeError(f"command failed: {' '.join(map(str, command))}")
    return seconds
