#!/usr/bin/env bash
# Installs what is needed, builds sqlbak three times (release; AddressSanitizer +
# UndefinedBehaviorSanitizer with the fuzz targets; ThreadSanitizer) and runs the
# whole test suite through CTest, two tests at a time (docs/TESTING.md). The
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

# Line tables only (-g1): enough for a backtrace, and the build is shorter.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
cmake --build build -j"$jobs"
phase_done "release build"
# A failure in one build does not stop the other from running: CI reports both.
failed=0
ctest --test-dir build --output-on-failure -j"$jobs" || failed=1
phase_done "release tests"

# The sanitizer builds use clang: its libFuzzer lets the sanitizer build also run
# the fuzz targets briefly (tests/fuzz, docs/FUZZING.md). A build-asan/ left by an
# earlier gcc configuration is started afresh.
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
# The ASan+UBSan build runs everything but the test labelled slow (a 1 GiB
# database under ASan would take most of CI's budget for no extra coverage);
# calendar_vs_systemd runs one case in four there. -O1 runs the tests about
# twice as fast as -O0; line tables are all that ASan's reports need.
asan_flags="-O1 -gline-tables-only"
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSQLBAK_SANITIZE=ON -DSQLBAK_FUZZ=ON \
  -DCMAKE_C_FLAGS_DEBUG="$asan_flags" -DCMAKE_CXX_FLAGS_DEBUG="$asan_flags"
cmake --build build-asan -j"$jobs"
phase_done "asan build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  SQLBAK_TEST_ORACLE_SHARE=4 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow || failed=1
phase_done "asan tests"

# ThreadSanitizer: the unit tests (the backup pipeline's threads) and the daemon's
# concurrency tests, against a TSan sqlbakd. TSan slows everything several times:
# the tests' waits for the daemon are lengthened, nothing else changes. Only the
# three programs these tests run are built.
CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSQLBAK_TSAN=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG"
cmake --build build-tsan -j"$jobs" --target sqlbakd sqlbakctl unit_tests
phase_done "tsan build"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 SQLBAK_TEST_DAEMON_WAIT=300 \
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
  -R '^(unit|integration\.(daemon|daemon_jobs|daemon_access|daemon_maintenance|daemon_alerts|concurrent))$' \
  || failed=1
phase_done "tsan tests"
exit "$failed"
