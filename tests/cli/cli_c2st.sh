#!/usr/bin/env bash
# nsbi c2st on CSV files and results.h5 posterior samples: the score of one distribution against itself and
# against a shifted one, the JSON it writes, the same bits on a rerun and on 2 ranks, and clear refusals.
source "$(dirname "$0")/common.sh"

# 500 samples per set: each set's C2ST is a proportion of 1000 held-out predictions, sd <= 0.016.
/usr/bin/python3 - <<'PY' || fail "could not write the sample files"
import h5py
import numpy as np
rng = np.random.default_rng(5)
def save(name, shift, n=500, columns="mu,sigma"):
    x = rng.normal(size=(n, len(columns.split(","))))
    x[:, 0] += shift
    np.savetxt(name, x, delimiter=",", header=columns, comments="")
    return x
save("a.csv", 0)
save("same.csv", 0)
save("shifted.csv", 2)
save("three.csv", 0, columns="mu,sigma,z")
save("renamed.csv", 0, columns="mu,tau")
save("few.csv", 0, n=3)
with h5py.File("results.h5", "w") as f:
    g = f.create_group("infer")
    g.attrs["parameters"] = ["mu", "sigma"]
    g.attrs["estimators"] = ["learned"]
    g.create_dataset("learned/posterior_samples", data=rng.normal(size=(500, 2)))
    g.create_dataset("exact/posterior_samples", data=rng.normal(size=(500, 2)) + [2, 0])
PY

expect_exit 0 help.txt -- "$NSBI" c2st --help
expect_grep "sbibm" help.txt

# One distribution: 0.5 within 4 sd (0.063) plus 0.01 for the held-out bias of a classifier fitting noise.
expect_exit 0 same.txt -- "$NSBI" c2st a.csv same.csv --out same.json --seed 3
expect_grep "^c2st: accuracy 0\.[0-9]+ \+- 0\.[0-9]+ \(5 folds; A: 500 samples, B: 500" same.txt
/usr/bin/python3 - <<'PY' || fail "same.json is not the C2ST of one distribution"
import json
r = json.load(open("same.json"))
assert r["seed"] == 3 and r["n_a"] == 500 and r["n_b"] == 500 and r["columns"] == ["mu", "sigma"], r
assert r["settings"]["folds"] == 5 and r["settings"]["hidden_layers"] == [20, 20], r
folds = r["fold_accuracies"]
assert len(folds) == 5 and abs(sum(folds) / 5 - r["accuracy"]) < 1e-12, r
assert abs(r["accuracy"] - 0.5) < 0.073, r["accuracy"]
PY
# The same seed: the same JSON, bit for bit, also when started on 2 ranks (rank 0 computes it).
expect_exit 0 again.txt -- "$NSBI" c2st a.csv same.csv --out again.json --seed 3
cmp -s same.json again.json || fail "a rerun with the same seed wrote another result"
expect_exit 0 ranks.txt -- mpi 2 "$NSBI" c2st a.csv same.csv --out ranks.json --seed 3
cmp -s same.json ranks.json || fail "2 ranks wrote another result than 1"

# Unit normals 2 apart: the Bayes-optimal accuracy Φ(1) = 0.841, within 4 sd (0.046) and, below, 0.015
# for the fitted boundary's excess error. The posterior samples of results.h5's only estimator are read by
# default; FILE:DATASET names another dataset.
expect_exit 0 shifted.txt -- "$NSBI" c2st results.h5 results.h5:/infer/exact/posterior_samples --out shifted.json
/usr/bin/python3 - <<'PY' || fail "shifted.json is not near the Bayes accuracy"
import json
a = json.load(open("shifted.json"))["accuracy"]
assert 0.841 - 0.061 < a < 0.841 + 0.046, a
PY
expect_exit 0 csv_h5.txt -- "$NSBI" c2st a.csv results.h5

# Refusals name the file and what is wrong (exit 2 for usage, 3 for the data).
expect_exit 3 dims.txt -- "$NSBI" c2st a.csv three.csv
expect_grep "A \(a.csv\) has 2 columns, B \(three.csv\) has 3" dims.txt
expect_exit 3 names.txt -- "$NSBI" c2st a.csv renamed.csv
expect_grep "name their columns differently" names.txt
expect_exit 3 few.txt -- "$NSBI" c2st a.csv few.csv
expect_grep "B \(few.csv\) has 3 samples; 5 folds need at least 5" few.txt
expect_exit 3 nodata.txt -- "$NSBI" c2st a.csv results.h5:/infer/none
expect_grep "'results.h5' has no dataset '/infer/none'" nodata.txt
expect_exit 3 missing.txt -- "$NSBI" c2st a.csv absent.csv
expect_grep "'absent.csv' cannot be opened" missing.txt
expect_exit 2 one.txt -- "$NSBI" c2st a.csv
expect_grep "needs two sample sets" one.txt
expect_exit 2 seed.txt -- "$NSBI" c2st a.csv same.csv --seed x
expect_grep "--seed x: expected a whole number" seed.txt
finish
