# Shared by the CLI tests: $1 is the nsbi binary, $2 a scratch directory (emptied first).
set -uo pipefail
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
