#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each and prints, per
# target, the executions, the corpus size and any crash artifact; exits non-zero
# when a target crashed. Not part of CI nor of scripts/test.sh (docs/fuzzing.md).
#
#   scripts/fuzz.sh                      every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh ids decimal
#
# Runs on the stable toolchain without a sanitizer (`-s none`): the code under
# test forbids `unsafe`, so a crash is a panic, which libFuzzer catches anyway.
# Without a sanitizer cargo-fuzz passes no `-Z` flag, so RUSTC_BOOTSTRAP is not
# needed (cargo rebuilds everything when its value changes between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
# The dev profile of fuzz/Cargo.toml (opt-level 1) by default; FUZZ_RELEASE=1
# for cargo-fuzz's release build (faster runs, a much longer build).
profile=(--dev)
[[ "${FUZZ_RELEASE:-0}" == 1 ]] && profile=()
logs=fuzz/logs

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if (($# > 0)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "==> building ${#targets[@]} target(s)"
for t in "${targets[@]}"; do
  cargo fuzz build -s none "${profile[@]}" "$t"
done

mkdir -p "$logs"
summary=()
failed=0
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for ${seconds}s"
  mkdir -p "fuzz/corpus/$t"
  status=ok
  # -timeout: an input that runs over 10 s is a finding (an accidental
  # quadratic), not something to wait out.
  if ! cargo fuzz run -s none "${profile[@]}" "$t" -- -max_total_time="$seconds" -timeout=10 \
    >"$logs/$t.log" 2>&1; then
    status=CRASH
    failed=1
  fi
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$logs/$t.log" | tail -1)
  if [[ -z "$runs" ]]; then
    # A crashed run prints no summary; its last status line has the count.
    runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$logs/$t.log" | tail -1)
  fi
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logs/$t.log" | tail -1)
  summary+=("$(printf '%-16s %6s %12s %8s  %s' "$t" "${seconds}s" "${runs:-?}" "$corpus" \
    "$status${artifact:+ $artifact}")")
  if [[ $status != ok ]]; then
    echo "$t crashed; the log is $logs/$t.log" >&2
    grep -m 20 -E "panicked|SUMMARY|ERROR|Test unit written" "$logs/$t.log" >&2 || true
  fi
done

echo
printf '%-16s %6s %12s %8s  %s\n' target time executions corpus result
printf '%s\n' "${summary[@]}"
exit "$failed"
