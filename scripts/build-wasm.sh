#!/usr/bin/env bash
# Release build of the browser client, as it ships: wasm-pack with the client's size settings
# (opt-level "s", fat LTO, one codegen unit — given here through CARGO_PROFILE_RELEASE_* so the
# workspace's release profile stays tuned for the server), then the module's function-name
# section dropped (a quarter of its bytes; rustc's `strip` would also drop the target-features
# section wasm-bindgen reads).
#
#   scripts/build-wasm.sh OUT_DIR [--keep-names] [wasm-pack build options, e.g. --target web]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:?usage: scripts/build-wasm.sh OUT_DIR [--keep-names] [wasm-pack options]}")"
shift
KEEP_NAMES=0
if [ "${1:-}" = "--keep-names" ]; then KEEP_NAMES=1; shift; fi

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

cd "$ROOT"
# --mode no-install: never download wasm-bindgen or wasm-opt (Cargo.toml disables wasm-opt).
wasm-pack build --release --mode no-install --out-dir "$OUT" --out-name tandem "$@"
if [ "$KEEP_NAMES" = 0 ]; then
  node "$ROOT/scripts/strip-wasm.mjs" "$OUT/tandem_bg.wasm" name producers
fi
