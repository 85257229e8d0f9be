#!/usr/bin/env bash
# The CLI on 1 and 3 ranks writes identical theta and x (compared with h5diff, which exits 1 on any difference).
source "$(dirname "$0")/common.sh"

cat >c.yaml <<YAML
campaign: {seed: 99, dir: one}
simulator: {name: lepton}
simulate: {n_samples: 20011, block_size: 1000}
YAML
expect_exit 0 np1.out -- mpi 1 "$NSBI" simulate c.yaml
expect_exit 0 np3.out -- mpi 3 "$NSBI" simulate c.yaml --output three
for d in theta x; do
  h5diff -q one/dataset.h5 three/dataset.h5 "/$d" "/$d" || fail "/$d differs between 1 and 3 ranks"
done
# And the files are really nsbi datasets of the requested size.
h5dump -H -d /x one/dataset.h5 | grep "( 20011, 5 )" >/dev/null || fail "unexpected /x shape: $(h5dump -H -d /x one/dataset.h5)"
grep -q '"n_samples": 20011' one/simulate.json || fail "simulate.json lacks n_samples: $(cat one/simulate.json)"
# Its I/O share: the time in writes and checkpoints, part of the stage's time.
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["dataset"]
sys.exit(0 if 0 < d["write_seconds"] <= d["seconds"] else 1)' three/simulate.json ||
  fail "simulate.json lacks 0 < write_seconds <= seconds: $(cat three/simulate.json)"
finish
