#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang in BUILD_DIR (default: build-fuzz/) and runs each: first once
# over every input of fuzz/regressions/<target>/ (what fuzzing found before, fixed since), then fuzzing for
# SECONDS (default 60) from the seed corpus fuzz/corpus/<target>/. Fails when a target finds anything: a
# crash, a sanitizer report, an exception other than nsbi's errors for bad input, a hang (an input taking
# more than 10 s) or more than 2 GiB of memory; the input that did it is saved in BUILD_DIR/findings/<target>/.
# docs/development.md, "Fuzzing".
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
targets=(campaign_reader observed_csv external_protocol)

bash "$root/scripts/install-deps.sh" build ci

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNSBI_ENABLE_FUZZING=ON \
  -DNSBI_ENABLE_TESTS=OFF -DNSBI_ENABLE_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

status=0
for target in "${targets[@]}"; do
  binary=$build/fuzz/fuzz_$target
  findings=$build/findings/$target
  work=$build/corpus/$target  # inputs fuzzing adds; the seed corpus in the repository is only read
  mkdir -p "$findings" "$work"
  options=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$findings/")
  [ -f "$root/fuzz/$target.dict" ] && options+=(-dict="$root/fuzz/$target.dict")
  regressions=("$root"/fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== $target: ${#regressions[@]} regression input(s)"
    if ! "$binary" "${options[@]}" "${regressions[@]}" >"$build/$target-regressions.log" 2>&1; then
      tail -n 40 "$build/$target-regressions.log"
      echo "FAIL: $target fails on a regression input ($build/$target-regressions.log)"
      status=1
      continue
    fi
  fi
  echo "== $target: fuzzing for $seconds s"
  if "$binary" "${options[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work" "$root/fuzz/corpus/$target" \
    >"$build/$target.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/$target.log"
  else
    tail -n 60 "$build/$target.log"
    echo "FAIL: $target found an input that fails (saved in $findings/; log $build/$target.log)"
    status=1
  fi
done
exit $status
