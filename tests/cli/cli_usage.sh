#!/usr/bin/env bash
# --help, --version, usage errors and their exit codes.
source "$(dirname "$0")/common.sh"

expect_exit 0 help.txt -- "$NSBI" --help
expect_grep "simulate" help.txt
expect_grep "exit codes" help.txt
# Only nsbi's help: Kokkos does not see the command line (it would print its own help around nsbi's).
head -n 1 help.txt | grep "^nsbi: neural simulation-based inference" >/dev/null ||
  fail "--help does not start with nsbi's help: $(head -n 3 help.txt)"
! grep -qi "kokkos" help.txt || fail "--help prints Kokkos' help: $(grep -i -m 3 kokkos help.txt)"
expect_exit 0 simhelp.txt -- "$NSBI" simulate --help
expect_grep "bit for bit" simhelp.txt
! grep -qi "kokkos" simhelp.txt || fail "simulate --help prints Kokkos' help: $(grep -i -m 3 kokkos simhelp.txt)"
expect_exit 0 submithelp.txt -- "$NSBI" submit --help
expect_grep "dependency=afterok" submithelp.txt
expect_exit 0 statushelp.txt -- "$NSBI" status --help
expect_grep "nsbi status DIR\|CONFIG" statushelp.txt
expect_grep "--slice k/K" help.txt
expect_exit 0 version.txt -- "$NSBI" --version
expect_grep "^nsbi [0-9]+\.[0-9]+\.[0-9]+" version.txt
expect_grep "parallel HDF5 1\." version.txt

expect_exit 2 nocmd.txt -- "$NSBI"
expect_grep "no command given" nocmd.txt
expect_exit 2 typo.txt -- "$NSBI" simulat x.yaml
expect_grep "unknown command 'simulat'; did you mean 'simulate'\?" typo.txt
expect_exit 2 noconfig.txt -- "$NSBI" simulate
expect_grep "needs a CONFIG file" noconfig.txt
expect_exit 2 badopt.txt -- "$NSBI" simulate x.yaml --forse
expect_grep "unknown option '--forse'; did you mean '--force'\?" badopt.txt
expect_exit 2 missing.txt -- "$NSBI" simulate does-not-exist.yaml
expect_grep "does-not-exist.yaml" missing.txt
# On several ranks a usage error is reported once, not once per rank.
expect_exit 2 mpi.txt -- mpi 2 "$NSBI" simulat x.yaml
[ "$(grep -c "unknown command" mpi.txt)" -eq 1 ] || fail "usage error not reported exactly once: $(cat mpi.txt)"
finish
