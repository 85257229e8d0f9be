#!/usr/bin/env bash
# Runs a command of this repository in a fresh Debian 12 root, as on a newly installed machine: the
# README's commands must work there with nothing installed beforehand (docs/development.md, "CI").
#
# Usage: scripts/clean_root.sh [--rev REV] [COMMAND...]
#   COMMAND   a shell command line run as root in the clone (default: bash scripts/example.sh)
#   --rev     the commit to clone (default: HEAD; uncommitted changes are never included)
# Environment: CLEAN_ROOT_PARENT, the folder the root is made in (default: /var/tmp; needs 6 GB).
#
# What it does: `debootstrap --variant=minbase bookworm` from the machine's own Debian mirror (read from
# its apt sources, one-line or deb822), the same bookworm suites in the root's apt sources, a policy-rc.d
# that forbids package scripts to start services, /proc, /sys, /dev, /dev/pts and a private /dev/shm
# mounted, a fresh clone of the repository in /root/nsbi, then COMMAND under chroot with a clean
# environment. Prints each phase's wall time. Whatever happens, the processes left in the root are
# killed, everything is unmounted and the root is removed (never while something is still mounted).
# Needs root, debootstrap and network access to the mirror; never reuses a cache between runs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

rev=HEAD
while [ $# -gt 0 ]; do
  case $1 in
    --rev) rev=${2:?--rev needs a commit}; shift 2 ;;
    --rev=*) rev=${1#--rev=}; shift ;;
    -h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "clean-root: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
command=${*:-bash scripts/example.sh}

if [ "$(id -u)" -ne 0 ]; then
  exec sudo CLEAN_ROOT_PARENT="${CLEAN_ROOT_PARENT:-}" bash "$0" --rev "$rev" "$command"
fi
command -v debootstrap >/dev/null || {
  echo "clean-root: debootstrap is missing (bash scripts/install-deps.sh ci)" >&2
  exit 2
}
sha=$(git -C "$repo" rev-parse --verify --quiet "$rev^{commit}") || {
  echo "clean-root: $rev is not a commit of $repo" >&2
  exit 2
}
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || [ "$rev" != HEAD ] ||
  echo "clean-root: note: uncommitted changes in $repo are not part of the run (the clone is $sha)"

# --- the mirror: the first enabled `deb` source of suite bookworm in the machine's apt sources; every
# source of a bookworm suite (bookworm-updates, bookworm-security, ...) goes into the root's sources.
sources=()  # "URI SUITE" pairs
read_one_line() {  # /etc/apt/sources.list format: deb [options] URI SUITE COMPONENT...
  local type uri suite
  while read -r type rest; do
    [ "$type" = deb ] || continue
    [[ $rest != \[* ]] || rest=${rest#*]}
    read -r uri suite _ <<<"$rest"
    sources+=("$uri $suite")
  done < <(sed 's/#.*//' "$1")
}
read_deb822() {  # *.sources format: stanzas of Types/URIs/Suites/Enabled fields separated by blank lines
  local stanza
  while IFS= read -r -d '' stanza; do
    local types uris suites enabled u s
    types=$(sed -n 's/^Types:[[:space:]]*//Ip' <<<"$stanza")
    uris=$(sed -n 's/^URIs:[[:space:]]*//Ip' <<<"$stanza")
    suites=$(sed -n 's/^Suites:[[:space:]]*//Ip' <<<"$stanza")
    enabled=$(sed -n 's/^Enabled:[[:space:]]*//Ip' <<<"$stanza")
    if [[ " $types " != *" deb "* ]] || [ "${enabled,,}" = no ]; then continue; fi
    for u in $uris; do
      for s in $suites; do sources+=("$u $s"); done
    done
  done < <(sed -e '/^[[:space:]]*#/d' -e 's/#.*//' "$1" |
    awk 'BEGIN { RS = ""; ORS = "\0" } { gsub(/\n[ \t]+/, " "); print }')  # folds continuation lines
}
shopt -s nullglob
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && read_one_line "$f"; done
for f in /etc/apt/sources.list.d/*.sources; do read_deb822 "$f"; done
shopt -u nullglob
mirror=
root_sources=()
for s in "${sources[@]}"; do
  read -r uri suite <<<"$s"
  [[ $suite == bookworm || $suite == bookworm-* ]] || continue
  root_sources+=("deb $uri $suite main")
  [ -n "$mirror" ] || [ "$suite" != bookworm ] || mirror=$uri
done
[ -n "$mirror" ] || {
  echo "clean-root: no enabled 'deb' source of suite bookworm in /etc/apt/sources.list{,.d/*.list,.d/*.sources}" >&2
  exit 2
}

# --- the root and its cleanup
parent=${CLEAN_ROOT_PARENT:-/var/tmp}
need_gb=6  # measured: ~2 GB after the example, ~5 GB after both README commands
avail_kb=$(df --output=avail -k "$parent" | tail -n 1)
[ "$avail_kb" -ge $((need_gb * 1024 * 1024)) ] || {
  echo "clean-root: $parent has $((avail_kb / 1024 / 1024)) GB free, the root needs ${need_gb} GB (CLEAN_ROOT_PARENT)" >&2
  exit 2
}
work=$(mktemp -d "$parent/nsbi-clean-root.XXXXXX")
root=$work/root
[[ $root != *[[:space:]]* ]] || { echo "clean-root: $root contains white space" >&2; rmdir "$work"; exit 2; }
mounts_under_root() {  # mount points at or below $root, deepest first (field 5 of mountinfo)
  awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
cleanup() {
  local status=$? pid m left t0
  trap - EXIT INT TERM
  t0=$(date +%s)
  if [ -n "$debootstrap_pid" ]; then  # interrupted while debootstrap ran
    kill -TERM "$debootstrap_pid" 2>/dev/null || true
    wait "$debootstrap_pid" 2>/dev/null || true
  fi
  for pid in /proc/[0-9]*; do  # processes still running in the root (daemons, a stray mpirun)
    [ "$(readlink "$pid/root" 2>/dev/null)" = "$root" ] || continue
    kill -KILL "${pid#/proc/}" 2>/dev/null || true
  done
  for m in $(mounts_under_root); do
    umount "$m" 2>/dev/null || umount --lazy "$m" || true
  done
  left=$(mounts_under_root)
  if [ -n "$left" ]; then
    echo "clean-root: still mounted, $work NOT removed: $left" >&2
    status=1
  else
    rm -rf --one-file-system "$work"
    echo "clean-root: removed $work"
  fi
  echo "clean-root: cleanup took $(($(date +%s) - t0)) s (exit $status)"
  exit "$status"
}
debootstrap_pid=
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase_names=()
phase_seconds=()
phase_start=$(date +%s)
total_start=$phase_start
phase() {  # ends the running phase, starts the named one
  local now
  now=$(date +%s)
  [ ${#phase_names[@]} -eq 0 ] || phase_seconds+=($((now - phase_start)))
  phase_start=$now
  [ $# -gt 0 ] || return 0
  phase_names+=("$1")
  echo "== clean-root: $1 (at $((now - total_start)) s)"
}

phase "debootstrap bookworm from $mirror"
include=()
[[ $mirror != https:* ]] || include=(--include=ca-certificates)
log=$work/debootstrap.log
# In the background, as the command below, so that a signal to this script cleans up at once.
debootstrap --variant=minbase "${include[@]}" bookworm "$root" "$mirror" >"$log" 2>&1 &
debootstrap_pid=$!
if ! wait "$debootstrap_pid"; then
  debootstrap_pid=
  tail -n 30 "$log" >&2
  echo "clean-root: debootstrap failed (log above)" >&2
  exit 1
fi
debootstrap_pid=

phase "prepare the root"
printf '%s\n' "${root_sources[@]}" >"$root/etc/apt/sources.list"
printf '#!/bin/sh\n# No package script starts a service in this root.\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp --dereference /etc/resolv.conf "$root/etc/resolv.conf"
host=$(hostname)
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n' "$host" >"$root/etc/hosts"
printf '%s\n' "$host" >"$root/etc/hostname"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"  # with the machine's cgroup file systems (slurmd needs them)
mount --make-rslave "$root/sys"  # before anything else: unmounting the copies must not reach the machine
mount --bind /dev "$root/dev"
mount --make-rslave "$root/dev"  # nothing mounted below it propagates back to the machine's /dev
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"  # OpenMPI's shared memory, private to the root
git clone --quiet --no-checkout "$repo" "$root/root/nsbi"
git -C "$root/root/nsbi" checkout --quiet --detach "$sha"
echo "clean-root: /root/nsbi is $(git -C "$repo" log -1 --format='%h %s' "$sha")"

phase "chroot: $command"
marks=$work/marks  # "SECONDS HEADING" for each of the command's own "== " headings: phases too
: >"$marks"
# In the background, so that a signal to this script runs the cleanup at once (it kills the command).
{
  rc=0
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/nsbi && $command" 2>&1 || rc=$?
  echo "$rc" >"$work/status"
} | while IFS= read -r line; do
  if [[ $line == "== "* ]]; then
    now=$(date +%s)
    echo "$now ${line#== }" >>"$marks"
    line="$line (at $((now - total_start)) s)"
  fi
  printf '%s\n' "$line"
done &
wait $!
status=$(cat "$work/status")
end=$(date +%s)
phase

echo "clean-root: phase times (wall):"
for i in "${!phase_names[@]}"; do
  printf '  %6d s  %s\n' "${phase_seconds[i]}" "${phase_names[i]}"
done
prev=
while read -r t name; do
  [ -z "$prev" ] || printf '  %6d s    %s\n' "$((t - prev))" "$prev_name"
  prev=$t prev_name=$name
done < <(cat "$marks"; echo "$end end")
printf '  %6d s  total (before cleanup)\n' "$((end - total_start))"
[ "$status" -eq 0 ] || echo "clean-root: '$command' failed in the clean root (exit $status)" >&2
exit "$status"
