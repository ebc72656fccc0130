#!/usr/bin/env bash
# Release build of the browser client, as it ships: wasm-pack with the client's size settings
# (opt-level "z", fat LTO, one codegen unit — given here through CARGO_PROFILE_RELEASE_* so the
# workspace's release profile stays tuned for the server), then binaryen's wasm-opt (the npm
# package `binaryen`, a root devDependency), then the module's function-name section dropped (a
# quarter of its bytes; rustc's `strip` would also drop the target-features section
# wasm-bindgen reads).
#
# Measured on the gzipped module (what the GUIDE's 150 KB budget counts): opt-level "z" is 18 KB
# smaller than "s". Speed is what "z" gives up: opt-level 3 made one update (bench scenario 1,
# 100k records) ~17% faster but the module 56 KB bigger; tandem-core alone at "s" costs 8.7 KB,
# alone at 3 it costs 32 KB for an update 10–27% faster (3 interleaved pairs). wasm-opt's -Oz is
# tuned for raw bytes: its inlining (and, less so, local-cse and merge-similar-functions) shrinks
# the raw module but makes it compress worse (+10 KB gzipped), so those passes are skipped; the
# rest saves another 4 KB gzipped, and --converge (repeating them until nothing shrinks) another
# 0.3 KB. --low-memory-unused (0.5 KB) lets it fold
# small constant addresses: Rust's wasm layout puts the 1 MiB stack first, growing down towards
# 0, so addresses below 1024 are reached only by a stack that is overflowing anyway.
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
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
# Panic locations name source files: the standard library's and the registry's paths are
# shortened (2.3 KB of the module's strings, ~0.4 KB gzipped).
RUSTC_COMMIT="$(rustc -vV | sed -n 's/^commit-hash: //p')"
CARGO_REGISTRY_SRC="${CARGO_HOME:-$HOME/.cargo}/registry/src"
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=/rustc/$RUSTC_COMMIT/library=std"$'\x1f'"--remap-path-prefix=$CARGO_REGISTRY_SRC=crates"

cd "$ROOT"
# wasm-bindgen names a snippet directory by a hash of the code: drop the previous build's.
rm -rf "$OUT/snippets"
# --mode no-install: never download wasm-bindgen or wasm-opt (Cargo.toml disables wasm-pack's own
# wasm-opt step, which would download binaryen; the npm one runs below).
wasm-pack build --release --mode no-install --out-dir "$OUT" --out-name tandem "$@"

WASM_OPT="$ROOT/node_modules/.bin/wasm-opt"
[ -x "$WASM_OPT" ] || { echo "[build-wasm] $WASM_OPT missing: run scripts/setup.sh (npm ci)" >&2; exit 1; }
WASM_OPT_FLAGS=(-Oz --converge --low-memory-unused --skip-pass=inlining-optimizing --skip-pass=local-cse --skip-pass=merge-similar-functions
  --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-multivalue)
if [ "$KEEP_NAMES" = 1 ]; then WASM_OPT_FLAGS+=(--debuginfo); fi
"$WASM_OPT" "${WASM_OPT_FLAGS[@]}" "$OUT/tandem_bg.wasm" -o "$OUT/tandem_bg.wasm"
if [ "$KEEP_NAMES" = 0 ]; then
  node "$ROOT/scripts/strip-wasm.mjs" "$OUT/tandem_bg.wasm" name producers target_features
fi
