#!/usr/bin/env bash
# Installs what is needed, builds sqlbak twice (release, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole test suite
# through CTest. The README's second command; CI runs it on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure

# The sanitizer build runs everything but the tests labelled slow (a 1 GiB
# database under ASan would take most of CI's budget for no extra coverage).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSQLBAK_SANITIZE=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -LE slow
