#!/usr/bin/python3
"""An sbibm task as an nsbi external simulator (docs/external_simulators.md), for sbibm_comparison.py.

Usage: sbibm_simulator.py TASK [DESIGN.npy]  (DESIGN.npy: bernoulli_glm's design matrix, from sbibm's files)

It receives nsbi's θ (whitened for bernoulli_glm, benchmarks/sbibm_tasks.py), maps it to the task's θ and
answers with x; row i draws its noise from the Philox stream (seed, first_index + i). No gold.
"""

import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbibm_tasks  # noqa: E402


def string(value):
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def read_exactly(stream, n):
    data = stream.read(n)
    return data if len(data) == n else None


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    design = np.load(sys.argv[2]) if len(sys.argv) == 3 else None
    task = sbibm_tasks.make(sys.argv[1], design)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    handshake = b"NSBISIM1" + string(task.name) + struct.pack("<Q", task.dim)
    for name in task.parameter_names():
        handshake += string(name) + struct.pack("<dd", task.low, task.high)
    handshake += struct.pack("<Q", task.data_dim) + b"".join(map(string, task.observable_names()))
    stdout.write(handshake + struct.pack("<Q", 0))
    stdout.flush()

    while True:
        magic = read_exactly(stdin, 8)
        if magic is None:
            return 0  # nsbi closed our input: the end
        if magic != b"NSBIREQ1":
            print(f"sbibm_simulator: unexpected request magic {magic!r}", file=sys.stderr)
            return 2
        batch, first_index, seed, n, gold = struct.unpack("<5Q", read_exactly(stdin, 40))
        if gold:
            print("sbibm_simulator: gold asked, but this simulator has none", file=sys.stderr)
            return 2
        theta = np.frombuffer(read_exactly(stdin, 8 * n * task.dim), dtype="<f8").reshape(n, task.dim)
        x = task.simulate(task.to_task(theta), first_index, seed)
        stdout.write(b"NSBIRES1" + struct.pack("<4Q", batch, n, task.data_dim, 0))
        stdout.write(np.ascontiguousarray(x, dtype="<f8").tobytes())
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
