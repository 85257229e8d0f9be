# Shared by the real-SLURM tests: $1 is the nsbi binary, $2 a scratch directory (emptied first). Starts a
# single-node cluster (scripts/slurm_cluster.sh) that is stopped when the test ends, whatever happens.
# Not root: the test is skipped (exit 77, CTest's SKIP_RETURN_CODE) with a message.
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the real-SLURM tests start munged, slurmctld and slurmd, which needs root"
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/../cli/common.sh"
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=/usr/bin/python3
NSBI=$(readlink -f "$NSBI")

# The cluster's state lives in a short /tmp path (munge's socket path must stay short).
CLUSTER=$(mktemp -d /tmp/nsbi-slurm.XXXXXX)
stop_cluster() { bash "$SOURCE_DIR/scripts/slurm_cluster.sh" stop "$CLUSTER" >/dev/null 2>&1; rm -rf "$CLUSTER"; }
trap stop_cluster EXIT
trap 'exit 143' TERM INT HUP  # a test killed (CTest's timeout) still stops its cluster
bash "$SOURCE_DIR/scripts/slurm_cluster.sh" start "$CLUSTER" || {
  echo "FAIL: the test cluster did not start"
  exit 1
}
export SLURM_CONF=$CLUSTER/slurm.conf

# The job ids of a submission, in order.
job_ids() { grep -o '"job_id": "[0-9]*"' "$1/slurm/jobs.json" | grep -o '[0-9]*'; }

# SLURM holds a requeued job back for two minutes (its EligibleTime); the test, as an administrator would,
# lets the requeued jobs of DIR start sooner. Not at once: slurmd refuses to launch a job whose credential
# is not newer, to the second, than the revocation the requeue made ("Job credential revoked"), so the job
# may start 2 s from now. A job already released (start time within 10 s) is left alone.
release_requeued() {
  local id reason start
  while read -r id reason start; do
    [ -n "$id" ] && [ "$reason" = BeginTime ] || continue
    [ "$(date -d "$start" +%s)" -gt $(($(date +%s) + 10)) ] && scontrol update jobid="$id" StartTime=now+2
  done < <(squeue -h -j "$(job_ids "$1" | paste -sd,)" -t PENDING -o "%i %r %S" 2>/dev/null)
}

# wait_campaign DIR TIMEOUT_S: until none of DIR's jobs is queued or running.
wait_campaign() {
  local dir=$1 timeout=$2 start ids
  start=$(date +%s)
  ids=$(job_ids "$dir" | paste -sd,)
  while [ -n "$(squeue -h -j "$ids" 2>/dev/null)" ]; do
    release_requeued "$dir"
    if [ $(($(date +%s) - start)) -gt "$timeout" ]; then
      fail "the jobs of $dir did not finish in $timeout s: $(squeue -j "$ids")"
      return 1
    fi
    sleep 0.5
  done
}

# Every job (every array task) of DIR ended COMPLETED, and nsbi status says every stage is complete.
expect_campaign_complete() {
  local dir=$1 id states
  for id in $(job_ids "$dir"); do
    states=$(scontrol -o show job "$id" | grep -o 'JobState=[A-Z_]*' | sort -u | paste -sd' ')
    [ "$states" = "JobState=COMPLETED" ] || fail "job $id of $dir ended as: $states"
  done
  expect_exit 0 "$dir.status.json" -- "$NSBI" status "$dir" --json
  local stages
  stages=$(grep -o '"stage": "[a-z]*", "state": "[a-z]*"' "$dir.status.json" | grep -c '"complete"')
  [ "$stages" -eq 5 ] || fail "nsbi status does not say all 5 stages are complete: $(cat "$dir.status.json")"
}

# The arrays of every output file are the same bits in both directories.
expect_same_outputs() {
  expect_exit 0 "compare-$1-$2.txt" -- "$PYTHON" "$SOURCE_DIR/tests/slurm/compare_outputs.py" "$1" "$2" \
    results.h5 model.h5 dataset.h5 reference.h5 observed.h5
}
