#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this machine, for the real-SLURM tests (tests/slurm/) and for
# trying `nsbi submit` (docs/slurm.md, "A test cluster on one machine"). Needs root and the Debian packages
# slurm-wlm and munge (scripts/install-deps.sh).
#
#   scripts/slurm_cluster.sh start STATE_DIR   # munged + slurmctld + slurmd, waits until the node is idle
#   scripts/slurm_cluster.sh stop STATE_DIR    # cancels the jobs and stops every daemon it started
#
# Everything lives in STATE_DIR: munge key and socket, slurm.conf, state and spool directories, logs, pid
# files. Clients find the cluster with `export SLURM_CONF=STATE_DIR/slurm.conf`. No cgroups
# (proctrack/linuxproc, task/none) and no accounting database: it runs in a container too.
set -uo pipefail

action=${1:-}
state=${2:-}
if [ -z "$action" ] || [ -z "$state" ]; then
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
fi
conf=$state/slurm.conf
export SLURM_CONF=$conf

log() { echo "slurm_cluster: $*"; }

# The pid in a pid file, if that process is alive.
pid_of() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Stops the process of a pid file: TERM, then KILL after `wait` seconds.
stop_pidfile() {
  local file=$1 wait_s=${2:-10} pid i
  pid=$(pid_of "$file") || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
}

start() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "slurm_cluster: needs root (munged, slurmctld and slurmd run as root here)" >&2
    return 2
  fi
  for program in munged slurmctld slurmd sbatch; do
    command -v "$program" >/dev/null || {
      echo "slurm_cluster: $program not found: install slurm-wlm and munge (scripts/install-deps.sh)" >&2
      return 2
    }
  done
  mkdir -p "$state"/{munge,ctld,spool,log,run}
  chmod 700 "$state/munge"
  # munge: a fresh key, its own socket (AuthInfo below), so no system munged is touched.
  dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$state/munge/munge.key"
  # The daemons (and the slurmstepd they start) carry NSBI_SLURM_CLUSTER=STATE_DIR in their environment:
  # how stop finds a leftover one, and only those of this cluster.
  NSBI_SLURM_CLUSTER=$state munged --force --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
    --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
    --seed-file="$state/munge/munge.seed" || {
    echo "slurm_cluster: munged did not start: $(tail -5 "$state/log/munged.log" 2>/dev/null)" >&2
    return 1
  }

  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  cat >"$conf" <<EOF
# Written by scripts/slurm_cluster.sh: one node ($host, $cpus CPUs, reached at 127.0.0.1 so that no name
# lookup is needed), everything under $state.
ClusterName=nsbitest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=${NSBI_SLURMCTLD_PORT:-6817}
SlurmdPort=${NSBI_SLURMD_PORT:-6818}
# No cgroups: processes are tracked by their parent links, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Jobs may be requeued (nsbi's preemption handling); finished jobs stay visible to scontrol for 10 min.
JobRequeue=1
MinJobAge=600
KillWait=30
ReturnToService=2
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  NSBI_SLURM_CLUSTER=$state slurmctld -f "$conf" || {
    echo "slurm_cluster: slurmctld did not start: $(tail -5 "$state/log/slurmctld.log" 2>/dev/null)" >&2
    return 1
  }
  NSBI_SLURM_CLUSTER=$state slurmd -f "$conf" || {
    echo "slurm_cluster: slurmd did not start: $(tail -5 "$state/log/slurmd.log" 2>/dev/null)" >&2
    return 1
  }
  local i node_state
  for ((i = 0; i < 60; i++)); do
    local daemon
    for daemon in slurmctld slurmd; do
      # (A daemon writes its pid file a moment after it forks: give it a few seconds.)
      ((i < 5)) || pid_of "$state/run/$daemon.pid" >/dev/null && continue
      # A port in use (another cluster: NSBI_SLURMCTLD_PORT/NSBI_SLURMD_PORT choose others), a bad config.
      echo "slurm_cluster: $daemon stopped: $(tail -3 "$state/log/$daemon.log" 2>/dev/null)" >&2
      return 1
    done
    node_state=$(sinfo -h -n "$host" -o %T 2>/dev/null)
    if [ "$node_state" = "idle" ]; then
      log "node $host ($cpus CPUs) is idle; export SLURM_CONF=$conf"
      return 0
    fi
    sleep 1
  done
  echo "slurm_cluster: the node did not become idle in 60 s (state: '${node_state:-none}')" >&2
  tail -5 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 2>/dev/null
  return 1
}

stop() {
  # Cancel the jobs first so that slurmd ends their processes; then the daemons.
  if pid_of "$state/run/slurmctld.pid" >/dev/null; then
    scancel --full --quiet --user=root 2>/dev/null
    local i
    for ((i = 0; i < 45; i++)); do
      [ -z "$(squeue -h -t RUNNING,COMPLETING,CONFIGURING 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  stop_pidfile "$state/run/slurmd.pid" 10
  stop_pidfile "$state/run/slurmctld.pid" 10
  stop_pidfile "$state/run/munged.pid" 5
  # A slurmstepd left behind (a job step that would not die) carries the marker the daemons were started
  # with: those processes, and only those, are ended.
  local proc pid
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    if tr "\\0" "\\n" 2>/dev/null <"$proc/environ" | grep -qxF "NSBI_SLURM_CLUSTER=$state"; then
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  log "stopped"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
