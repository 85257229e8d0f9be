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

# A --set typo in a section name, or a path through a section the schema lacks, is reported like the same
# typo in the file (exit 2, the key and the closest valid one), not as an internal error.
expect_exit 2 set_typo.out -- "$NSBI" simulate ok.yaml --set simulat.seed=1
expect_grep "^nsbi: error: --set simulat.seed=1: simulat: unknown key; did you mean 'simulate'\?" set_typo.out
expect_exit 2 set_unknown.out -- "$NSBI" simulate ok.yaml --set foo.bar=5
expect_grep "^nsbi: error: --set foo.bar=5: foo: unknown key" set_unknown.out
expect_exit 2 set_nested.out -- "$NSBI" simulate ok.yaml --set train.optimizer.beta=5
expect_grep "^nsbi: error: --set train.optimizer.beta=5: train.optimizer: unknown key" set_nested.out

# A second YAML document is an error at its '---' line, not silently ignored.
rm -rf out
{ good; printf -- '---\nsimulate:\n  n_samples: 0\n'; } >two_documents.yaml
expect_exit 2 two_documents.out -- "$NSBI" simulate two_documents.yaml
expect_grep "two_documents.yaml:10:1: a second YAML document starts here" two_documents.out
[ ! -e out/dataset.h5 ] || fail "two_documents: out/dataset.h5 exists after a failed run"

# A stray ',' after the document is invalid YAML (it was ignored with everything after the document's end).
{ good; printf '...\n,\n'; } >stray_comma.yaml
expect_exit 2 stray_comma.out -- timeout 60 "$NSBI" simulate stray_comma.yaml
expect_grep "stray_comma.yaml:11:1: invalid YAML: unexpected ','" stray_comma.out

# Checked when the config is loaded, before any work, whatever the command: the pipeline's order and the
# hidden layers' widths.
rm -rf out
expect_exit 2 order.out -- "$NSBI" simulate ok.yaml --set "pipeline=[train, simulate]"
expect_grep "pipeline\[1\]: stage 'simulate' is listed after 'train', but the stages run in the order simulate, train" order.out
expect_exit 2 twice.out -- "$NSBI" simulate ok.yaml --set "pipeline=[simulate, train, train]"
expect_grep "pipeline\[2\]: stage 'train' is listed twice" twice.out
expect_exit 2 widths.out -- "$NSBI" simulate ok.yaml --set "train.network.head.hidden=[16.5]"
expect_grep "--set train.network.head.hidden=\[16.5\]: train.network.head.hidden\[0\]: expected an integer, got '16.5'" widths.out
[ ! -e out/dataset.h5 ] || fail "order/widths: out/dataset.h5 exists after a failed run"

# Integers are read and bounded exactly: 2^53 + 1 is above campaign.seed's maximum 2^53 although it rounds
# to 2^53 as a double, and so is the same value written in exponent form.
check_seed() {  # name, seed, expected message pattern
  expect_exit 2 "$1.out" -- "$NSBI" simulate ok.yaml --output "$1" --set "campaign.seed=$2"
  expect_grep "$3" "$1.out"
  [ ! -e "$1/dataset.h5" ] || fail "$1: $1/dataset.h5 exists after a failed run"
}
check_seed seed 9007199254740993 "campaign.seed: must be <= 9007199254740992, got 9007199254740993"
check_seed seed_exponent 9.007199254740993e15 "campaign.seed: must be <= 9007199254740992, got 9.007199254740993e15"
check_seed seed_fraction 9007199254740992.5 "campaign.seed: expected an integer, got '9007199254740992.5'"

# YAML aliases that expand exponentially are refused at once, not expanded until memory runs out (10^6
# elements here: 10^9 with two more lines).
{
  good
  printf 'slurm:\n  extra:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'
  for i in 1 2 3 4 5; do printf '    a%d: &a%d [%s]\n' $i $i "$(printf "*a$((i - 1)), %.0s" {1..9})*a$((i - 1))"; done
} >aliases.yaml
expect_exit 2 aliases.out -- timeout 60 "$NSBI" simulate aliases.yaml
expect_grep "aliases.yaml:[0-9]+:[0-9]+: slurm.extra.a[0-9].*: the config has more than 100000 keys and list elements" aliases.out

# Observed events in a CSV that starts with a UTF-8 byte-order mark (some editors write one) read like the
# same file without it, rather than as a column named '<BOM>x1'.
cat >bom.yaml <<YAML
campaign: {seed: 3, dir: bom}
simulator: {name: gaussian2d}
infer: {observed: obs.csv, estimators: [exact], grid: {mu2: {points: 3}, rho12: {points: 3}}, posterior_samples: 10}
YAML
mkdir -p bom && printf '\xef\xbb\xbfx1,x2\n0.1,0.2\n-0.3,0.5\n' >bom/obs.csv
expect_exit 0 bom.out -- "$NSBI" infer bom.yaml
[ -e bom/results.h5 ] || fail "bom: no bom/results.h5 after infer"

# An external simulator whose handshake declares a name that cannot be a config key, or a name twice, is
# refused as a bad handshake (exit 3), not an internal error when the campaign's keys are declared for it.
cat >names.py <<'PY'
import struct, sys
def text(t):
    return struct.pack("<Q", len(t.encode())) + t.encode()
out = b"NSBISIM1" + text("names") + struct.pack("<Q", 2)
for name in sys.argv[1:3]:
    out += text(name) + struct.pack("<dd", 0, 1)
out += struct.pack("<Q", 1) + text("x") + struct.pack("<Q", 0)
sys.stdout.buffer.write(out)
sys.stdout.flush()
sys.stdin.read()
PY
for names in "a a" "a b.c" "a b,c"; do
  printf 'campaign: {dir: names}\nsimulator: {name: external, command: [python3, names.py, "%s", "%s"]}\n' $names >names.yaml
  expect_exit 3 names.out -- "$NSBI" simulate names.yaml
  expect_grep "the handshake: the handshake declares parameter 1's name as '${names#a }'" names.out
done

# An alias inside its own anchor is a cycle: an error, not an endless recursion (it crashed, exit 139).
{ good; printf 'infer:\n  grid: &g {m: *g}\n'; } >cycle.yaml
expect_exit 2 cycle.out -- "$NSBI" simulate cycle.yaml
expect_grep "cycle.yaml:11:9: infer.grid(.m)+: nested more than 100 levels deep \(is a YAML alias \*name inside the anchor &name it refers to\?\)" cycle.out

# A foreign file where the dataset goes is refused without --force, and kept.
mkdir -p out && echo "not hdf5" >out/dataset.h5
expect_exit 2 foreign.out -- "$NSBI" simulate ok.yaml
expect_grep "is not an nsbi dataset; use --force" foreign.out
[ "$(cat out/dataset.h5)" = "not hdf5" ] || fail "the foreign file was modified"
expect_exit 0 forced.out -- "$NSBI" simulate ok.yaml --force
[ -e out/dataset.h5 ] && [ ! -e out/dataset.h5.partial ] || fail "--force did not produce a complete dataset"
finish
