#!/usr/bin/env bash
# One run per stage and work slice on a campaign directory (docs/config.md, "One run per stage"): a second
# run of the same stage and slice is refused at once (exit 2) naming the holder; other slices run beside it;
# the plain (merge) run waits for the slices; a SIGKILLed holder's lock is taken over at once; a holder
# frozen past its lease is taken over after it, and stops with an error when it runs again.
source "$(dirname "$0")/common.sh"

# A short lease (a setting for tests): the frozen holder below is stale after 5 s, and not before, however
# slow the machine.
export NSBI_LOCK_LEASE_SECONDS=5
HOST=$(hostname)
cat >lock.yaml <<YAML
campaign: {seed: 3, dir: camp}
simulator: {name: gaussian2d}
simulate: {n_samples: 10000, block_size: 5000, reference: {theta: {mu2: 0, rho12: 0}, n_samples: 10000}}
train: {reference: theta, network: {head: {hidden: [16]}}, epochs: 2000, batch_size: 256, ensemble: 2, early_stopping_patience: 0}
pipeline: [simulate, train]
YAML
expect_exit 0 simulate.out -- "$NSBI" simulate lock.yaml

background=()  # the runs started in the background, stopped if the test gives up
give_up() {
  fail "$*"
  for pid in "${background[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
  wait
  finish
}
wait_for() {  # FILE [PATTERN]: until FILE exists (and holds PATTERN); gives up after 20 s
  for _ in $(seq 1 400); do
    [ -e "$1" ] && { [ -z "${2:-}" ] || grep -qE -- "$2" "$1"; } && return 0
    sleep 0.05
  done
  give_up "no $1${2:+ holding /$2/} after 20 s"
}
LOCKS=camp/work/locks
SLICE0=$LOCKS/train.members-0-of-2.lock

# Members 0/2 on 2 ranks, long enough for what follows (2000 epochs), then stopped with SIGTERM.
"$MPIEXEC" -np 2 --oversubscribe "$NSBI" train lock.yaml --members 0/2 >first.out 2>&1 &
first=$!
background+=("$first")
wait_for first.out "train member 0: epoch"
# The same slice again, on 1 or 2 ranks: refused at once (not within 30 s: not at once), naming the holder
# (rank 0's pid, this host).
expect_exit 2 second.out -- timeout 30 "$NSBI" train lock.yaml --members 0/2
expect_grep "error: 'train --members 0/2' already runs on this campaign directory, as pid [0-9]+ on host $HOST, started .* UTC, lease renewed [0-9]+ s ago \(lock file '$SLICE0'\)" second.out
expect_exit 2 second2.out -- timeout 30 "$MPIEXEC" -np 2 --oversubscribe "$NSBI" train lock.yaml --members 0/2
expect_grep "already runs on this campaign directory, as pid [0-9]+ on host $HOST" second2.out
# The plain run merges the slices' work: refused while a slice runs, also as a stage of `nsbi run`.
# (Fewer epochs, so that a broken lock does not make these runs train for long.)
expect_exit 2 plain.out -- "$NSBI" train lock.yaml --set train.epochs=20
expect_grep "'train --members 0/2' runs on this campaign directory, as pid [0-9]+ on host $HOST.*the plain .nsbi train. merges the slices' work" plain.out
expect_exit 2 run.out -- "$NSBI" run lock.yaml --set train.epochs=20
expect_grep "the plain .nsbi train. merges the slices' work" run.out
# `nsbi status` names the holder.
expect_exit 0 status.out -- "$NSBI" status lock.yaml
expect_grep "^train +running " status.out
expect_grep "'train --members 0/2' held by pid [0-9]+ on host $HOST" status.out
# Another slice runs beside it: both locks exist at once.
"$NSBI" train lock.yaml --members 1/2 --set train.epochs=20 >other.out 2>&1 &
other=$!
background+=("$other")
wait_for "$LOCKS/train.members-1-of-2.lock"
[ -e "$SLICE0" ] || fail "members 0/2 ended before members 1/2 started: the slices did not run at once"
wait "$other"
code=$?
[ "$code" -eq 0 ] || fail "members 1/2 beside 0/2: exit $code, expected 0: $(cat other.out)"
# SIGTERM to rank 0 (the holder: its pid is in the lock) stops both ranks with exit 4 and frees the lock.
kill -TERM "$(sed -n 's/.*"pid": \([0-9]*\),.*/\1/p' "$SLICE0")"
wait "$first"
code=$?
[ "$code" -eq 4 ] || fail "members 0/2 after SIGTERM: exit $code, expected 4: $(cat first.out)"
[ -z "$(ls -A "$LOCKS")" ] || fail "locks left after both runs ended: $(ls -A "$LOCKS")"

# A holder killed with SIGKILL leaves its lock; its pid is gone, so the next run takes it over at once.
"$NSBI" train lock.yaml --members 0/2 --force >killed.out 2>&1 &
killed=$!
background+=("$killed")
wait_for "$SLICE0" "\"pid\": $killed,"
kill -KILL "$killed"
wait "$killed" 2>/dev/null
[ -e "$SLICE0" ] || fail "the killed run left no lock (the takeover below would prove nothing)"
expect_exit 0 after_kill.out -- "$NSBI" train lock.yaml --members 0/2 --force --set train.epochs=5
expect_grep "warning: took over the lock file '$SLICE0' of 'train --members 0/2' \(pid $killed on host $HOST.*\): its process no longer exists" after_kill.out

# A holder frozen (SIGSTOP) for longer than its lease: another run takes the lock over after the lease, and
# the holder, once it runs again, finds its lease taken and stops with an error instead of writing on.
"$NSBI" train lock.yaml --members 0/2 --force >frozen.out 2>&1 &
frozen=$!
background+=("$frozen")
wait_for "$SLICE0" "\"pid\": $frozen,"
kill -STOP "$frozen"
expect_exit 2 early.out -- "$NSBI" train lock.yaml --members 0/2  # within its lease: refused
expect_grep "already runs on this campaign directory, as pid $frozen on host $HOST" early.out
sleep 6
# (--force: the frozen run may have been stopped before its first checkpoint of this config.)
"$NSBI" train lock.yaml --members 0/2 --force >taker.out 2>&1 &
taker=$!
background+=("$taker")
wait_for "$SLICE0" "\"pid\": $taker,"
kill -CONT "$frozen"
wait "$frozen"
code=$?
[ "$code" -eq 2 ] || fail "the frozen holder: exit $code, expected 2: $(cat frozen.out)"
expect_grep "error: the lock file '$SLICE0' was taken over by 'train --members 0/2' \(pid $taker on host $HOST.*\) while this run held it, its lease not renewed in time: this run stops here, writing nothing more beside the run that took over" frozen.out
expect_grep "took over the lock file '$SLICE0' .*\(pid $frozen on host $HOST.*\): its lease was last renewed [0-9]+ s ago \(lease time 5 s\)" taker.out
kill -TERM "$taker"
wait "$taker"
code=$?
[ "$code" -eq 4 ] || [ "$code" -eq 0 ] || fail "the taker: exit $code, expected 4 (stopped) or 0: $(cat taker.out)"
[ ! -e "$SLICE0" ] || fail "the taker's lock is left after it stopped"
finish
