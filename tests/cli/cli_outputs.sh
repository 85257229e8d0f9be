#!/usr/bin/env bash
# Outputs are never lost: paths of a campaign that collide (in any spelling) are a config error before any
# work; infer, test, calibrate and coverage rerun with another config refuse to replace the earlier results (results.h5 and
# the summary keep their bytes) unless --force, which replaces only the stage's own group; a stage whose
# results.h5 or group is gone is not complete (nsbi status agrees) and runs again, even though its summary is
# still there; new observed events under the same file name are another identity. A lost train.json is written
# again from the model that carries it.
source "$(dirname "$0")/common.sh"

cat >small.yaml <<YAML
campaign: {seed: 5, dir: run}
simulator: {name: gaussian2d}
simulate:
  n_samples: 10000
  reference: {theta: {mu2: 0, rho12: 0}}
  observed: {theta: {mu2: 0.3, rho12: 0.4}, n_events: 20}
train: {network: {head: {hidden: [8]}}, epochs: 1, diagnostics: {grid_points: 2, n_events: 100}}
infer:
  estimators: [exact]
  grid:
    mu2: {min: -0.9, max: 0.9, points: 5}
    rho12: {min: -0.9, max: 0.9, points: 5}
calibrate:
  grid:
    mu2: {values: [0.3]}
    rho12: {values: [0.0, 0.4]}
  n_toys: 40
  toys_per_item: 20
test: {h0: {mu2: 0, rho12: 0}, h1: {mu2: 0.3, rho12: 0.4}, n_toys: 20, toys_per_item: 10}
coverage: {grid: {mu2: {values: [0.3]}, rho12: {values: [0.0]}}, n_toys: 20, toys_per_item: 10}
YAML
digest() { sha256sum "$@" | cut -c1-64 | tr '\n' ' '; }

# Colliding outputs: refused at validation, naming both keys, before anything is written.
expect_exit 2 ref.out -- "$NSBI" simulate small.yaml --set simulate.reference.output=dataset.h5 --force
expect_grep "simulate.reference.output: is '.*/run/dataset.h5', the same file as simulate.output" ref.out
[ -e run ] && fail "a refused simulate wrote into the campaign directory: $(ls -R run)"
for spelling in ./dataset.h5 sub/../dataset.h5 "$PWD/run/dataset.h5" "$PWD/run/./x/../dataset.h5"; do
  expect_exit 2 spelled.out -- "$NSBI" simulate small.yaml --set "simulate.reference.output=$spelling"
  expect_grep "simulate.reference.output: is .*the same file as simulate.output" spelled.out
done
expect_exit 2 partial.out -- "$NSBI" simulate small.yaml --set simulate.observed.output=dataset.h5.partial
expect_grep "simulate.observed.output: is .*the .partial file of simulate.output" partial.out
expect_exit 2 results.out -- "$NSBI" simulate small.yaml --set simulate.output=results.h5
expect_grep "simulate.output: is .*the same file as results.h5" results.out
expect_exit 2 work.out -- "$NSBI" simulate small.yaml --set simulate.output=work/d.h5
expect_grep "simulate.output: is .*inside the directory work/" work.out
expect_exit 2 observed.out -- "$NSBI" simulate small.yaml --set infer.observed=reference.h5
expect_grep "infer.observed: is .*the same file as simulate.reference.output .*may be no output of the campaign but simulate.observed.output" observed.out
[ -e run ] && fail "a refused simulate wrote into the campaign directory: $(ls -R run)"

expect_exit 0 simulate.out -- "$NSBI" simulate small.yaml
before=$(digest run/dataset.h5 run/reference.h5)
expect_exit 2 model.out -- "$NSBI" train small.yaml --set train.output=dataset.h5 --force
expect_grep "train.output: is '.*/run/dataset.h5', the same file as simulate.output" model.out
[ "$(digest run/dataset.h5 run/reference.h5)" = "$before" ] || fail "train.output=dataset.h5 changed the datasets"
# A symbolic link to the dataset is the dataset.
ln -s dataset.h5 run/alias.h5
expect_exit 2 alias.out -- "$NSBI" train small.yaml --set train.output=alias.h5 --force
expect_grep "train.output: is '.*/run/dataset.h5', the same file as simulate.output" alias.out
rm run/alias.h5
# train.json lost, model.h5 kept: the model is the output, so train is complete and writes its summary
# again from the copy the model carries (before, it said "nothing to do" and nsbi status never saw it done).
expect_exit 0 train.out -- "$NSBI" train small.yaml
summary=$(digest run/train.json)
rm run/train.json
expect_exit 0 train2.out -- "$NSBI" train small.yaml
expect_grep "train.json' was missing: written again from" train2.out
[ -e run/train.json ] && [ "$(digest run/train.json)" = "$summary" ] ||
  fail "train rerun without train.json did not restore it as it was"
"$NSBI" status small.yaml --set "pipeline=[simulate, train]" >status.out 2>&1
expect_grep "train +complete" status.out

# The inference stages, then reruns with another config: refused, every byte kept.
for stage in infer calibrate test coverage; do
  expect_exit 0 $stage.out -- "$NSBI" $stage small.yaml
done
before=$(digest run/results.h5 run/infer.json run/calibrate.json run/test.json run/coverage.json)
expect_exit 2 test2.out -- "$NSBI" test small.yaml --set test.n_toys=10
expect_grep "test: '.*/results.h5' holds /test made from another config \(test.n_toys: 20 -> 10\)" test2.out
expect_exit 2 coverage2.out -- "$NSBI" coverage small.yaml --set calibrate.levels=[0.6826894921370859]
expect_grep "coverage: '.*/results.h5' holds /coverage made from another config \(calibrate.levels: " coverage2.out
expect_exit 2 infer2.out -- "$NSBI" infer small.yaml --set infer.grid.mu2.points=7
expect_grep "infer: '.*/results.h5' holds /infer made from another config \(infer.grid.mu2.points: 5 -> 7\); --force replaces /infer and infer.json" infer2.out
expect_exit 2 calibrate2.out -- "$NSBI" calibrate small.yaml --set calibrate.n_toys=20
expect_grep "calibrate: '.*/results.h5' holds /calibrate made from another config \(calibrate.n_toys: 40 -> 20\); --force replaces /calibrate" calibrate2.out
[ "$(digest run/results.h5 run/infer.json run/calibrate.json run/test.json run/coverage.json)" = "$before" ] ||
  fail "a refused rerun changed results.h5 or a summary"
# A group of results.h5 from another config is refused even without its summary; a summary alone too.
mv run/calibrate.json calibrate.json.kept
expect_exit 2 nosummary.out -- "$NSBI" calibrate small.yaml --set calibrate.n_toys=20
expect_grep "holds /calibrate made from another config" nosummary.out
mv calibrate.json.kept run/calibrate.json
cp run/results.h5 results.h5.kept
/usr/bin/python3 - <<'PY' 2>/dev/null || h5delete_fallback=1
import h5py
with h5py.File("run/results.h5", "a") as f:
    del f["calibrate"]
PY
if [ -z "${h5delete_fallback:-}" ]; then
  expect_exit 2 summaryonly.out -- "$NSBI" calibrate small.yaml --set calibrate.n_toys=20
  expect_grep "calibrate: '.*/calibrate.json' holds the results of calibrate made from another config" summaryonly.out
fi
cp results.h5.kept run/results.h5
# The same config: complete, nothing to do.
expect_exit 0 again.out -- "$NSBI" calibrate small.yaml
expect_grep "calibrate: complete for this config: nothing to do" again.out
# --force replaces /calibrate alone: /infer keeps its values.
expect_exit 0 forced.out -- "$NSBI" calibrate small.yaml --set calibrate.n_toys=20 --force
expect_grep '"n_toys_per_point": 20' run/calibrate.json
h5diff -q results.h5.kept run/results.h5 /infer /infer >/dev/null 2>&1 || fail "--force on calibrate changed /infer"
h5ls run/results.h5/calibrate/exact/q_toys | grep "{2, 20}" >/dev/null || fail "--force did not replace /calibrate"

# A missing results.h5 or group is not complete, whatever the summaries say.
rm run/results.h5
expect_exit 0 status.out -- "$NSBI" status small.yaml --set "pipeline=[simulate, infer, calibrate]"
expect_grep "^simulate +complete" status.out
expect_grep "^calibrate +pending" status.out
expect_grep "its summary is there, but not .*/results.h5:/calibrate" status.out
expect_exit 0 noresults.out -- "$NSBI" calibrate small.yaml --set calibrate.n_toys=20
grep -q "nothing to do" noresults.out && fail "calibrate without results.h5 said: $(cat noresults.out)"
[ -s run/results.h5 ] || fail "calibrate rerun without results.h5 wrote none"
expect_exit 0 nogroup.out -- "$NSBI" infer small.yaml
grep -q "nothing to do" nogroup.out && fail "infer without /infer in results.h5 said: $(cat nogroup.out)"
h5diff -q results.h5.kept run/results.h5 /infer/exact /infer/exact >/dev/null 2>&1 || fail "the rerun infer differs"
# An unreadable results.h5: exit 3 naming it, left as it is.
echo "not hdf5" >run/results.h5
expect_exit 3 garbage.out -- "$NSBI" infer small.yaml
expect_grep "infer: cannot read the results file '.*/results.h5'" garbage.out
[ "$(cat run/results.h5)" = "not hdf5" ] || fail "an unreadable results.h5 was replaced"
# New observed events under the same file name are another identity: refused, not "nothing to do".
printf 'x1,x2\n' >run2.csv
for i in $(seq 1 20); do printf '0.%d,-0.%d\n' "$i" "$((i % 7))" >>run2.csv; done
csv=(--output run2 --set "infer.observed=$PWD/run2.csv")
expect_exit 0 csv.out -- "$NSBI" infer small.yaml "${csv[@]}"
sed -i 's/^0.5,/0.45,/' run2.csv
before=$(digest run2/results.h5 run2/infer.json)
expect_exit 2 csv2.out -- "$NSBI" infer small.yaml "${csv[@]}"
expect_grep "infer: '.*/results.h5' holds /infer made from another config \(observed.digest: " csv2.out
[ "$(digest run2/results.h5 run2/infer.json)" = "$before" ] || fail "a refused infer changed run2/"
finish
