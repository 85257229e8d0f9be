#!/usr/bin/env python3
"""Compares the outputs of two runs of one campaign: every dataset (array) of the given HDF5 files must
have the same shape, type and bits (NaN equal to NaN); attributes are not compared (they hold creation
times and command lines). Usage: compare_outputs.py DIR_A DIR_B FILE... ; exit 1 listing the differences."""
import sys

import h5py
import numpy as np


def datasets(path):
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def main():
    a_dir, b_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    problems = []
    compared = 0
    for name in files:
        a, b = datasets(f"{a_dir}/{name}"), datasets(f"{b_dir}/{name}")
        if not a:
            problems.append(f"{name}: no datasets in {a_dir}")
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                problems.append(f"{name}:/{key} only in {b_dir if key in b else a_dir}")
                continue
            x, y = np.asarray(a[key]), np.asarray(b[key])
            compared += 1
            if x.shape != y.shape or x.dtype != y.dtype:
                problems.append(f"{name}:/{key}: shape/type {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            elif x.dtype.kind in "fc":
                if not np.array_equal(x, y, equal_nan=True):
                    problems.append(f"{name}:/{key}: values differ (max |diff| {np.nanmax(np.abs(x - y))})")
            elif x.dtype.kind in "iub":
                if not np.array_equal(x, y):
                    problems.append(f"{name}:/{key}: values differ")
            elif x.tobytes() != y.tobytes():
                problems.append(f"{name}:/{key}: contents differ")
    for p in problems:
        print("DIFFERENT:", p)
    print(f"compared {compared} datasets in {len(files)} file(s): {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
