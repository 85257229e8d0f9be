#!/usr/bin/env bash
# The lensing simulator through the command line: images [N, 1, 64, 64] in float32, deflated, with gold; every
# array the same bits on 1, 2 and 3 ranks; SIGKILL and resume give the same arrays; the default block size
# keeps a block of images to 16 MiB.
source "$(dirname "$0")/common.sh"

# An odd row count and a block size that does not divide it (the last round leaves ranks idle), gold against a
# reference point, and a drawn host (the default).
cat >ranks.yaml <<YAML
campaign: {seed: 17, dir: np1}
simulator: {name: lensing}
simulate:
  n_samples: 45
  block_size: 4
  gold: true
  compression: deflate
  reference: {n_samples: 7, theta: {f_sub: 0.05, beta: -1.9}}
YAML
expect_exit 0 np1.out -- mpi 1 "$NSBI" simulate ranks.yaml
expect_exit 0 np2.out -- mpi 2 "$NSBI" simulate ranks.yaml --set campaign.dir=np2
expect_exit 0 np3.out -- mpi 3 "$NSBI" simulate ranks.yaml --set campaign.dir=np3
for file in dataset.h5 reference.h5; do
  arrays=$(h5ls -r "np1/$file" | awk '$2 == "Dataset" {print $1}' | grep -v '^/progress')
  echo "$file: $(echo $arrays)"
  grep -qx /x <<<"$arrays" || fail "$file has no /x: $(h5ls -r "np1/$file")"
  for ranks in 2 3; do
    for array in $arrays; do
      h5diff -q "np1/$file" "np$ranks/$file" "$array" "$array" ||
        fail "$file $array differs between 1 and $ranks ranks"
    done
  done
done
grep -qx /gold/score <<<"$(h5ls -r np1/dataset.h5 | awk '$2 == "Dataset" {print $1}')" ||
  fail "dataset.h5 has no /gold/score"
h5dump -H -d /x np1/dataset.h5 >x-header.txt
expect_grep "H5T_IEEE_F32LE" x-header.txt
expect_grep "\( 45, 1, 64, 64 \)" x-header.txt
h5dump -p -H -d /x np1/dataset.h5 | grep DEFLATE >/dev/null || fail "/x is not deflated: $(h5dump -p -H -d /x np1/dataset.h5)"

# The default block size: 512 images (16 MiB of x in double), recorded in the resolved config.
cat >default.yaml <<YAML
campaign: {seed: 3, dir: default}
simulator: {name: lensing, fixed: [lens_redshift, velocity_dispersion, source_offset]}
simulate: {n_samples: 3}
YAML
expect_exit 0 default.out -- mpi 1 "$NSBI" simulate default.yaml
h5dump -a /config default/dataset.h5 | grep "block_size: 512" >/dev/null ||
  fail "the default block size of lensing is not 512: $(h5dump -a /config default/dataset.h5 | head -40)"

# SIGKILL mid-run on 2 ranks, then the same command: the arrays of an uninterrupted run.
cat >kill.yaml <<YAML
campaign: {seed: 5, dir: killed}
simulator: {name: lensing, fixed: [lens_redshift, velocity_dispersion]}
simulate: {n_samples: 2400, block_size: 8, checkpoint_seconds: 0.1, compression: deflate}
YAML
expect_exit 0 whole.out -- mpi 2 "$NSBI" simulate kill.yaml --output whole
start_and_wait kill.yaml killed
kill_all "nsbi simulate kill.yaml"
done_at_kill=$(blocks_done killed)
echo "killed with $done_at_kill of 300 blocks recorded"
[ "$done_at_kill" -ge 4 ] && [ "$done_at_kill" -lt 300 ] || fail "the kill did not land mid-run ($done_at_kill blocks)"
expect_exit 0 resumed.out -- mpi 2 "$NSBI" simulate kill.yaml
expect_grep "resuming .*: $((done_at_kill * 8)) of 2400 rows already done" resumed.out
for d in theta x; do
  h5diff -q whole/dataset.h5 killed/dataset.h5 "/$d" "/$d" || fail "/$d differs after kill and resume"
done
finish
