#!/usr/bin/python3
"""An external nsbi simulator (docs/external_simulators.md): a latent z ~ N(mu, 1) seen through two smeared
observables, x1 = z + N(0, 0.5^2) and x2 = exp(0.3 z) + N(0, 0.1^2), with gold: only z's density depends on
mu, so the joint log ratio is log r(x, z | mu, mu0) = ((z - mu0)^2 - (z - mu)^2) / 2 and the joint score is
t(x, z | mu) = z - mu.

Every row draws from its own Philox stream keyed by (seed, row index), so a row's value does not depend on how
nsbi batches the rows or on how many MPI ranks run copies of this program.

Usage in a campaign: simulator: {name: external, command: [python3, examples/external/smeared_gaussian.py]}
Options for testing the error handling (never needed otherwise): --crash-at-batch K (exit 3 at batch K),
--wrong-shape-at-batch K (answer with one observable too few), --nan-at-batch K, --sleep-at-batch K, and
--once FILE (the failure happens only if FILE does not exist yet, and creates it: a program that fails once).
"""

import argparse
import os
import struct
import sys
import time

import numpy as np

MAGIC_HANDSHAKE = b"NSBISIM1"
MAGIC_REQUEST = b"NSBIREQ1"
MAGIC_RESPONSE = b"NSBIRES1"
PARAMETERS = [("mu", -2.0, 2.0)]
OBSERVABLES = ["x1", "x2"]


def read_exactly(stream, n):
    data = stream.read(n)
    if len(data) != n:
        return None  # nsbi closed our input: the end
    return data


def string(value):
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def simulate(theta, first_index, seed):
    """z, x [n, 2] for rows theta [n, 1] with row indices first_index, first_index + 1, ..."""
    n = len(theta)
    noise = np.empty((n, 3))
    for i in range(n):
        rng = np.random.Generator(np.random.Philox(key=seed, counter=[first_index + i, 0, 0, 0]))
        noise[i] = rng.standard_normal(3)
    z = theta[:, 0] + noise[:, 0]
    x = np.stack([z + 0.5 * noise[:, 1], np.exp(0.3 * z) + 0.1 * noise[:, 2]], axis=1)
    return z, x


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in ("crash", "wrong-shape", "nan", "sleep"):
        parser.add_argument(f"--{option}-at-batch", type=int, default=-1)
    parser.add_argument("--once", default=None)
    args = parser.parse_args()
    if args.once and os.path.exists(args.once):
        args.crash_at_batch = args.wrong_shape_at_batch = args.nan_at_batch = args.sleep_at_batch = -1

    def failing(option):
        """Whether this batch fails; --once FILE records that it did."""
        if args.once and option >= 0 and batch == option:
            open(args.once, "w").close()
        return batch == option
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    handshake = MAGIC_HANDSHAKE + string("smeared_gaussian") + struct.pack("<Q", len(PARAMETERS))
    for name, low, high in PARAMETERS:
        handshake += string(name) + struct.pack("<dd", low, high)
    handshake += struct.pack("<Q", len(OBSERVABLES)) + b"".join(string(name) for name in OBSERVABLES)
    handshake += struct.pack("<Q", 1)  # gold
    stdout.write(handshake)
    stdout.flush()

    p = len(PARAMETERS)
    while True:
        magic = read_exactly(stdin, 8)
        if magic is None:
            return 0
        if magic != MAGIC_REQUEST:
            print(f"smeared_gaussian: unexpected request magic {magic!r}", file=sys.stderr)
            return 2
        batch, first_index, seed, n, gold = struct.unpack("<5Q", read_exactly(stdin, 40))
        theta = np.frombuffer(read_exactly(stdin, 8 * n * p), dtype="<f8").reshape(n, p)
        if gold:
            theta0 = np.frombuffer(read_exactly(stdin, 8 * p), dtype="<f8")
            gold_theta = np.frombuffer(read_exactly(stdin, 8 * n * p), dtype="<f8").reshape(n, p)
        if failing(args.crash_at_batch):
            print(f"smeared_gaussian: crashing at batch {batch} as asked", file=sys.stderr)
            return 3
        if failing(args.sleep_at_batch):
            time.sleep(3600)
        z, x = simulate(theta, first_index, seed)
        if failing(args.nan_at_batch):
            x[n // 2, 1] = np.nan
        if failing(args.wrong_shape_at_batch):
            x = x[:, :1]
        columns = 1 + p if gold else 0
        stdout.write(MAGIC_RESPONSE + struct.pack("<4Q", batch, n, x.shape[1], columns))
        stdout.write(np.ascontiguousarray(x, dtype="<f8").tobytes())
        if gold:
            mu, mu_gold = theta[:, 0], gold_theta[:, 0]
            log_r = 0.5 * ((z - theta0[0]) ** 2 - (z - mu_gold) ** 2)
            score = z - mu
            stdout.write(np.stack([log_r, score], axis=1).astype("<f8").tobytes())
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
