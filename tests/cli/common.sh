# Shared by the CLI tests: $1 is the nsbi binary, $2 a scratch directory (emptied first).
set -uo pipefail
# Under pipefail a pipe into `grep -q` can fail although grep matched: -q stops reading at the first match
# and the writer dies of SIGPIPE. Checks on a pipe use `grep ... >/dev/null` (it reads everything), checks
# on a variable a here-string.
NSBI=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
MPIEXEC=${MPIEXEC:-mpiexec}
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect_exit CODE OUTFILE -- command...: runs the command, saving stdout+stderr to OUTFILE.
expect_exit() {
  local want=$1 out=$2
  shift 3
  "$@" >"$out" 2>&1
  local got=$?
  [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want; output:$(printf '\n'; cat "$out")"
}

# h5same A B PATH: the dataset PATH is the same bits in the HDF5 files A and B.
h5same() { h5diff -q "$1" "$2" "$3" "$3" >/dev/null 2>&1 || fail "$3 differs between $1 and $2"; }

expect_grep() {
  local pattern=$1 file=$2
  grep -qE -- "$pattern" "$file" || fail "expected /$pattern/ in $file:$(printf '\n'; cat "$file")"
}

finish() {
  if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
}

mpi() {
  local np=$1
  shift
  "$MPIEXEC" -np "$np" --oversubscribe "$@"
}

# blocks_done DIR: the blocks recorded in DIR's partial dataset (read without locking while the writer runs).
blocks_done() {
  HDF5_USE_FILE_LOCKING=FALSE h5dump -y -d /progress/blocks_done "$1/dataset.h5.partial" 2>/dev/null |
    sed -n '/DATA {/,/}/p' | grep -o '\b1\b' | wc -l
}

# start_and_wait CONFIG DIR: starts `nsbi simulate CONFIG` on 2 ranks in the background (the launcher's pid in
# $leader, its output in DIR.out) and returns once 4 blocks are recorded in DIR (or after 12 s).
start_and_wait() {
  "$MPIEXEC" -np 2 --oversubscribe "$NSBI" simulate "$1" >"$2.out" 2>&1 &
  leader=$!
  for _ in $(seq 1 600); do
    sleep 0.02
    [ -e "$2/dataset.h5.partial" ] && [ "$(blocks_done "$2")" -ge 4 ] && break
  done
}

# kill_all PATTERN: SIGKILL every process whose command line matches (the ranks and the launcher at once:
# mpirun's children live in their own process groups) and waits until they are gone.
kill_all() {
  pkill -KILL -f "$1"
  wait "$leader" 2>/dev/null
  # SIGKILL is delivered asynchronously: give the ranks a moment to be gone before calling them survivors.
  for _ in $(seq 1 100); do
    pgrep -f "$1" >/dev/null || break
    sleep 0.05
  done
  pgrep -f "$1" >/dev/null && fail "ranks survived the kill"
}

# stop_when_journaled BYTES JOURNALS OUTFILE PATTERN -- COMMAND...: runs `mpi 2 COMMAND` in the background
# (output in OUTFILE), sends SIGTERM to the processes whose command line matches PATTERN (its ranks) once the
# work journals (a glob, quoted) hold more than BYTES bytes (or after 20 s), and checks that it exits with
# code 4 (interrupted).
stop_when_journaled() {
  local bytes=$1 journals=$2 out=$3 pattern=$4
  shift 5
  "$MPIEXEC" -np 2 --oversubscribe "$@" >"$out" 2>&1 &
  leader=$!
  for _ in $(seq 1 2000); do
    # shellcheck disable=SC2086  # the glob is expanded here
    [ "$(cat $journals 2>/dev/null | wc -c)" -gt "$bytes" ] && break
    sleep 0.01
  done
  pkill -TERM -f "$pattern"
  wait "$leader"
  local code=$?
  [ "$code" -eq 4 ] || fail "SIGTERM: exit code $code, expected 4: $(cat "$out")"
}
