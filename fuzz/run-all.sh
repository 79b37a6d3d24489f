#!/usr/bin/env bash
# Runs every cargo-fuzz target of Sheaf (sheaf-core and sheaf-sim) for SECONDS seconds each, one after the other.
#
#   fuzz/run-all.sh [SECONDS]      (default 60; run from anywhere)
#
# Installs cargo-fuzz if it is missing (`cargo install cargo-fuzz --locked`, from crates.io).
# libFuzzer needs nightly-only rustc flags (-Zsanitizer=address, sanitizer coverage); the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, so no nightly is needed. Per target it runs
#
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> \
#       fuzz/corpus-tmp/<target> fuzz/corpus/<target> -- -max_total_time=SECONDS
#
# with AddressSanitizer (cargo-fuzz's default). New inputs go to fuzz/corpus-tmp/<target>
# (ignored by git); the committed seeds in fuzz/corpus/<target> are only read. A crashing input
# is written to fuzz/artifacts/<target>/: add it to fuzz/corpus/<target>/ once understood, so
# `cargo test -p sheaf-tests --test fuzz_corpus` replays it forever.
#
# Exits non-zero if any target crashed (all targets still run).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

targets=(decode_frame decode_gossip decode_ticket decode_v2 v2_sessions replica_sync live_inputs sim_seed)

echo "== building ${targets[*]}"
cargo fuzz build --fuzz-dir fuzz || exit 1

failed=()
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/corpus-tmp/$target"
  if ! cargo fuzz run --fuzz-dir fuzz "$target" \
    "fuzz/corpus-tmp/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=30 -print_final_stats=1; then
    echo "!! $target crashed: see fuzz/artifacts/$target/" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed: ${failed[*]}" >&2
  exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s without a crash"
