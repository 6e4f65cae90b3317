#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz, each for a number of seconds, over
# its seed corpus (tests/fuzz/corpus/NAME) with its dictionary
# (tests/fuzz/dictionaries/NAME.dict). CTest runs each target for a few
# seconds through this script (fuzz.NAME); for a deliberate long run:
#
#   tests/fuzz/run.sh --seconds 3600            # every target, an hour each
#   tests/fuzz/run.sh --seconds 600 calendar    # one target
#
# New inputs go to WORK/corpus/NAME (the seed corpus is only read), crashing,
# leaking, timing-out and out-of-memory inputs to WORK/artifacts/NAME/, and
# the fuzzer's output to WORK/logs/NAME.log. Exits non-zero if any target
# failed; each failure names its reproducer. See docs/FUZZING.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

usage() {
  cat <<USAGE
usage: $0 [--seconds N] [--bin-dir DIR] [--work-dir DIR] [--fork N] [--replay-crashes]
          [TARGET...] [-- LIBFUZZER-FLAGS...]

  --seconds N        run each target N seconds (default 20)
  --bin-dir DIR      where the fuzz_NAME binaries are
                     (default \$SQLBAK_FUZZ_BIN_DIR or build-fuzz/tests/fuzz)
  --work-dir DIR     grown corpora, artifacts and logs (default BIN-DIR/work)
  --fork N           run N fuzzing processes per target (libFuzzer -fork=N);
                     a crash is saved and fuzzing goes on
  --replay-crashes   only run each target over tests/fuzz/crashes/NAME/*
                     (the kept reproducers of known bugs) and report which
                     still fail
  TARGET             config, protocol, manifest, pack, calendar, duration,
                     timestamp (default: every fuzz_* binary in BIN-DIR)
USAGE
}

seconds=20
bin_dir="${SQLBAK_FUZZ_BIN_DIR:-$repo/build-fuzz/tests/fuzz}"
work_dir=""
fork=0
replay=0
targets=()
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    --fork) fork="$2"; shift 2 ;;
    --replay-crashes) replay=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "run.sh: --seconds needs a positive number" >&2; exit 2; }
work_dir="${work_dir:-$bin_dir/work}"

if [[ ${#targets[@]} -eq 0 ]]; then
  for bin in "$bin_dir"/fuzz_*; do
    [[ -x "$bin" ]] && targets+=("$(basename "$bin" | sed 's/^fuzz_//')")
  done
  if [[ ${#targets[@]} -eq 0 ]]; then
    echo "run.sh: no fuzz_* binaries in $bin_dir; build them first:" >&2
    echo "  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSQLBAK_SANITIZE=ON -DSQLBAK_FUZZ=ON" >&2
    echo "  cmake --build build-fuzz -j2" >&2
    exit 2
  fi
fi

# Per target: the largest input worth trying (bytes). Real inputs are far
# smaller: configs and manifests of a few KiB, packs of a few pages.
max_len_of() {
  case "$1" in
    config) echo 8192 ;;
    protocol) echo 4096 ;;
    manifest) echo 8192 ;;
    pack) echo 65536 ;;
    calendar) echo 256 ;;
    duration | timestamp) echo 128 ;;
    *) echo 4096 ;;
  esac
}

# Sanitizers: stop at the first error of any kind, with a stack trace.
# (-fno-sanitize-recover=undefined already makes UBSan errors fatal.)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1:detect_leaks=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"

failed=()
for name in "${targets[@]}"; do
  bin="$bin_dir/fuzz_$name"
  if [[ ! -x "$bin" ]]; then
    echo "run.sh: $bin is missing (build it, or check the target name)" >&2
    failed+=("$name (no binary)")
    continue
  fi

  if [[ $replay -eq 1 ]]; then
    shopt -s nullglob
    crashes=("$here/crashes/$name"/*)
    shopt -u nullglob
    for input in "${crashes[@]}"; do
      [[ "$input" == *.md ]] && continue
      # With the targets' guards against these known bugs switched off.
      if SQLBAK_FUZZ_KNOWN_BUGS=1 "$bin" -timeout=10 -rss_limit_mb=2048 "$input" >/dev/null 2>&1; then
        echo "fuzz.$name: $(basename "$input"): passes now (fixed? move it to corpus/$name)"
      else
        echo "fuzz.$name: $(basename "$input"): still fails"
        failed+=("$name: $input")
      fi
    done
    continue
  fi

  corpus="$work_dir/corpus/$name"
  artifacts="$work_dir/artifacts/$name"
  log="$work_dir/logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  flags=(
    -max_total_time="$seconds"
    -max_len="$(max_len_of "$name")"
    -timeout=10                 # seconds per input: a slower one is a hang
    -rss_limit_mb=2048          # also the malloc limit: a larger allocation is a bug
    -artifact_prefix="$artifacts/"
    -print_final_stats=1
  )
  dict="$here/dictionaries/$name.dict"
  [[ -f "$dict" ]] && flags+=(-dict="$dict")
  [[ "$fork" -gt 0 ]] && flags+=(-fork="$fork" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  seeds=()
  [[ -d "$here/corpus/$name" ]] && seeds+=("$here/corpus/$name")

  echo "fuzz.$name: ${seconds}s, max_len $(max_len_of "$name"), seeds ${seeds[*]:-none}"
: >"$work_dir/.started-$name"
  status=0
  "$bin" "${flags[@]}" ${extra[@]+"${extra[@]}"} "$corpus" ${seeds[@]+"${seeds[@]}"} >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 \2/p' "$log" | tail -1)
  if [[ -n "$runs" ]]; then
    read -r n s <<<"$runs"
    echo "fuzz.$name: $n runs in ${s}s ($(( n / (s > 0 ? s : 1) )) exec/s), corpus $(ls "$corpus" | wc -l) inputs"
  fi
  # Inputs saved by this run (earlier runs' artifacts are left in place).
  new_artifacts=$(find "$artifacts" -type f -newer "$work_dir/.started-$name" | sort)
  if [[ $status -ne 0 || -n "$new_artifacts" ]]; then
    echo "fuzz.$name: FAILED (exit $status); last lines of $log:"
    tail -n 60 "$log"
    for a in $new_artifacts; do
      echo "fuzz.$name: reproducer: $a  (run: $bin $a)"
    done
    failed+=("$name")
  else
    grep -E '^(stat::|#[0-9]+ *DONE)' "$log" || true
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
