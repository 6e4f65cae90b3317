#!/usr/bin/env bash
# Installs what is needed, builds sqlbak three times (release; AddressSanitizer +
# UndefinedBehaviorSanitizer with the fuzz targets; ThreadSanitizer) and runs the
# whole test suite through CTest, two tests at a time, each sanitizer build
# compiling beside the tests before it (docs/TESTING.md). The
# README's second command; CI runs it on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

# How long each phase took, printed at the end (and on failure): the suite must
# stay well under CI's budget.
phase_names=() phase_seconds=()
phase_start=$SECONDS
phase_done() {
  phase_names+=("$1")
  phase_seconds+=($((SECONDS - phase_start)))
  phase_start=$SECONDS
}
print_phases() {
  local i
  echo "test.sh: time per phase (total ${SECONDS} s):"
  for i in "${!phase_names[@]}"; do printf '  %-22s %5d s\n' "${phase_names[$i]}" "${phase_seconds[$i]}"; done
}
trap print_phases EXIT

scripts/install-deps.sh
phase_done install-deps

# Each sanitizer build compiles, at the lowest CPU priority, while the tests of
# the build before it run: those wait on daemons, servers and disks for about a
# quarter of their time, and the build takes what they leave. Its output goes to
# a log that is shown when it fails.
build_in_background() {  # NAME DIR [cmake --build arguments...]
  local name=$1 dir=$2
  shift 2
  nice -n 19 cmake --build "$dir" -j"$jobs" "$@" >"$dir.build.log" 2>&1 &
  background_build_pid=$!
  background_build_name=$name
  background_build_log=$dir.build.log
}
wait_for_background_build() {
  if ! wait "$background_build_pid"; then
    tail -n 200 "$background_build_log"
    echo "test.sh: the $background_build_name build failed (log: $background_build_log)" >&2
    exit 1
  fi
  tail -n 1 "$background_build_log"
}

# Line tables only (-g1): enough for a backtrace, and the build is shorter. File
# by file (no unity build), so that a file that does not include what it uses
# fails here.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
cmake --build build -j"$jobs"
phase_done "release build"

# The sanitizer builds use clang: its libFuzzer lets the sanitizer build also run
# the fuzz targets briefly (tests/fuzz, docs/FUZZING.md), here 10 s each. A
# build-asan/ left by an earlier gcc configuration is started afresh.
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
# The ASan+UBSan build runs everything but the test labelled slow (a 1 GiB
# database under ASan would take most of CI's budget for no extra coverage);
# calendar_vs_systemd runs one case in four there. -O1 runs the tests about
# twice as fast as -O0; line tables are all that ASan's reports need.
asan_flags="-O1 -gline-tables-only"
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSQLBAK_SANITIZE=ON -DSQLBAK_FUZZ=ON \
  -DSQLBAK_FUZZ_SECONDS=10 -DSQLBAK_UNITY=ON \
  -DCMAKE_C_FLAGS_DEBUG="$asan_flags" -DCMAKE_CXX_FLAGS_DEBUG="$asan_flags"
build_in_background asan build-asan

# A failure in one build's tests does not stop the others from running: CI
# reports them all.
failed=0
ctest --test-dir build --output-on-failure -j"$jobs" || failed=1
phase_done "release tests"
wait_for_background_build
phase_done "asan build (rest)"

# ThreadSanitizer: the unit tests (the backup pipeline's threads) and the daemon's
# concurrency tests, against a TSan sqlbakd. TSan slows everything several times:
# the tests' waits for the daemon are lengthened, nothing else changes. Only the
# three programs these tests run are built.
CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQLBAK_TSAN=ON \
  -DSQLBAK_UNITY=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG"
build_in_background tsan build-tsan --target sqlbakd sqlbakctl unit_tests

ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  SQLBAK_TEST_ORACLE_SHARE=4 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow || failed=1
phase_done "asan tests"
wait_for_background_build
phase_done "tsan build (rest)"

TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 SQLBAK_TEST_DAEMON_WAIT=300 \
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
  -R '^(unit|integration\.(daemon|daemon_jobs|daemon_access|daemon_maintenance|daemon_alerts|concurrent)(\.[0-9]+)?)$' \
  || failed=1
phase_done "tsan tests"
exit "$failed"
