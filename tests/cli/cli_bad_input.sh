#!/usr/bin/env bash
# Bad input exits 2 with a message naming file, line and key, and leaves no output that looks complete.
source "$(dirname "$0")/common.sh"

good() {
  cat <<YAML
campaign:
  seed: 3
  dir: out
simulator:
  name: lepton
simulate:
  n_samples: 1000
  proposal:
    m: {kind: uniform, min: 500, max: 900}
YAML
}

check_bad() {  # name, sed expression applied to the good config, expected message pattern
  local name=$1 edit=$2 pattern=$3
  good | sed -e "$edit" >"$name.yaml"
  expect_exit 2 "$name.out" -- "$NSBI" simulate "$name.yaml"
  expect_grep "$pattern" "$name.out"
  [ ! -e out/dataset.h5 ] || fail "$name: out/dataset.h5 exists after a failed run"
}

check_bad misspelt 's/n_samples/n_sampels/' \
  "misspelt.yaml:7:3: simulate.n_sampels: unknown key; did you mean 'simulate.n_samples'\?"
check_bad string_for_number 's/n_samples: 1000/n_samples: many/' \
  "string_for_number.yaml:7:14: simulate.n_samples: expected an integer, got 'many'"
check_bad out_of_domain 's/min: 500/min: 300/' \
  "out_of_domain.yaml:9:29: simulate.proposal.m.min: 300 is outside the domain of lepton's parameter m, \[400, 1000\]"
check_bad unknown_simulator 's/name: lepton/name: leptn/' \
  "unknown_simulator.yaml:5:9: simulator.name: .*'leptn'.*did you mean 'lepton'\?"
check_bad negative 's/n_samples: 1000/n_samples: 0/' "negative.yaml:7:14: simulate.n_samples: must be >= 1, got 0"

# An unwritable output path (a regular file where the directory should be).
good >unwritable.yaml
touch blocker
expect_exit 2 unwritable.out -- "$NSBI" simulate unwritable.yaml --output blocker/sub
expect_grep "--set campaign.dir=blocker/sub: campaign.dir: cannot create directory 'blocker/sub'" unwritable.out
sed -i 's|dir: out|dir: blocker/sub|' unwritable.yaml
expect_exit 2 unwritable2.out -- "$NSBI" simulate unwritable.yaml
expect_grep "unwritable.yaml:3:8: campaign.dir: cannot create directory" unwritable2.out

mkdir -p out && touch out/file
expect_exit 2 output.out -- "$NSBI" simulate unwritable.yaml --output out --set simulate.output=file/d.h5
expect_grep "--set simulate.output=file/d.h5: simulate.output: 'out/file' is not a directory" output.out
rm -rf out

# A bad --set is named as such.
good >ok.yaml
expect_exit 2 set.out -- "$NSBI" simulate ok.yaml --set simulate.block_size=-5
expect_grep "--set simulate.block_size=-5: simulate.block_size: must be >= 1" set.out

# A foreign file where the dataset goes is refused without --force, and kept.
mkdir -p out && echo "not hdf5" >out/dataset.h5
expect_exit 2 foreign.out -- "$NSBI" simulate ok.yaml
expect_grep "is not an nsbi dataset; use --force" foreign.out
[ "$(cat out/dataset.h5)" = "not hdf5" ] || fail "the foreign file was modified"
expect_exit 0 forced.out -- "$NSBI" simulate ok.yaml --force
[ -e out/dataset.h5 ] && [ ! -e out/dataset.h5.partial ] || fail "--force did not produce a complete dataset"
finish
