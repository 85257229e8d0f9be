"""Timing helpers shared by the benchmark scripts: how busy other programs kept the machine during a phase
(on a shared 2-core machine they lower the figures, so every result records it)."""

import os
import resource
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
