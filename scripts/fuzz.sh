#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET seconds (default 30), one after another,
# each in a single libFuzzer process (one core). Each target starts from a scratch copy of
# its committed corpus (fuzz/scratch/corpus/<target>), so the committed corpus never
# grows. Fails if any target crashes, and prints executions and coverage per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Environment: FUZZ_TARGETS="verify_token ..." to run only some targets; FUZZ_SANITIZER
# (default none; address, leak, ... as cargo fuzz takes them); FUZZ_TOOLCHAIN=stable to
# build with stable even when nightly is installed. Installs cargo-fuzz
# (`cargo install cargo-fuzz --locked`) when missing; uses the nightly toolchain if rustup
# has one, else stable with RUSTC_BOOTSTRAP=1. Nothing leaves the machine but crates.io
# downloads. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs="${1:-30}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi
read -r -a targets <<<"${FUZZ_TARGETS:-verify_token verify_claims keyring_parse activation_body}"
sanitizer="${FUZZ_SANITIZER:-none}"

# Per-target libFuzzer options: the largest input worth trying and a dictionary.
options() {
  case "$1" in
    verify_token) echo "-max_len=2048 -dict=$root/fuzz/dicts/token.dict" ;;
    verify_claims) echo "-max_len=1536 -dict=$root/fuzz/dicts/token.dict" ;;
    keyring_parse) echo "-max_len=8192 -dict=$root/fuzz/dicts/keyring.dict" ;;
    # Over the 16 KiB body limit, so the 413 path is reachable.
    activation_body) echo "-max_len=17408 -dict=$root/fuzz/dicts/activation.dict" ;;
    *) echo "unknown target $1" >&2; return 1 ;;
  esac
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
  echo "== toolchain: $(rustup run nightly rustc --version)"
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
  echo "== toolchain: $(rustc --version) with RUSTC_BOOTSTRAP=1"
fi

scratch="$root/fuzz/scratch"
mkdir -p "$scratch"
# The targets make their key directories and ring files under TMPDIR; keep them here.
export TMPDIR="$scratch/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT

echo "== build (sanitizer: $sanitizer)"
(cd fuzz && cargo "${toolchain[@]}" fuzz build -s "$sanitizer")

summary=()
failed=()
for t in "${targets[@]}"; do
  opts=$(options "$t")
  corpus="$scratch/corpus/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$root/fuzz/artifacts/$t"
  cp -R "$root/fuzz/corpus/$t/." "$corpus/"
  before=$(find "$root/fuzz/artifacts/$t" -type f | sort)
  log="$scratch/$t.log"
  echo "== $t: ${secs}s"
  status=0
  # shellcheck disable=SC2086 # $opts is a list of options
  (cd fuzz && cargo "${toolchain[@]}" fuzz run -s "$sanitizer" "$t" "$corpus" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    $opts) >"$log" 2>&1 || status=$?
  after=$(find "$root/fuzz/artifacts/$t" -type f | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | grep -E '/(crash|leak|timeout|oom)-' || true)
  crashes=$(if [ -n "$new" ]; then echo "$new" | wc -l; else echo 0; fi)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  summary+=("$(printf '%-16s %6s %12s %8s %6s %7s %6s %7s' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")")
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed+=("$t")
    echo "!! $t failed (exit $status); log: $log"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 || true
    [ -z "$new" ] || echo "$new"
  fi
done

echo
echo "== figures (libFuzzer: execs and exec/s from -print_final_stats, cov = edges, ft = features, corp = scratch corpus size)"
printf '%-16s %6s %12s %8s %6s %7s %6s %7s\n' target seconds execs exec/s cov ft corp crashes
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; replay with cargo fuzz run <target> <file>)"
  exit 1
fi
echo "no crashes"
