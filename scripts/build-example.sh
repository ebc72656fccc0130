#!/usr/bin/env bash
# Builds what the example app (examples/todo) runs on, skipping what is up to date. Used by
# `npm start` (scripts/start.sh) and the e2e tests (scripts/test-e2e.sh).
#
#   - the npm package into dist/tandem-sync (scripts/build-package.sh), only when one of the
#     files it is built from is newer than the last build (or TANDEM_REBUILD=1);
#   - the tandem-server binary: `cargo build` (debug, as the tests use it; incremental), into
#     $CARGO_TARGET_DIR/debug/tandem-server;
#   - examples/todo/node_modules/tandem-sync → dist/tandem-sync: the link that
#     `npm install file:../../dist/tandem-sync` would make, so the app imports the built package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

step() { printf '[build] %s\n' "$*"; }

# --- the npm package ---------------------------------------------------------------------------
PACKAGE=dist/tandem-sync
STAMP="$PACKAGE/package.json" # written last by scripts/build-package.sh
SOURCES=(Cargo.toml Cargo.lock src crates/core js/src js/tsconfig.json js/tsconfig.build.json pkg-template
  scripts/build-package.sh scripts/build-wasm.sh scripts/strip-wasm.mjs)
changed=
if [ "${TANDEM_REBUILD:-0}" != 1 ] && [ -f "$STAMP" ] && [ -f "$PACKAGE/wasm/tandem_bg.wasm" ]; then
  changed="$(find "${SOURCES[@]}" -newer "$STAMP" -type f -print -quit 2>/dev/null || true)"
  [ -z "$changed" ] && step "package $PACKAGE: up to date"
else
  changed=yes
fi
if [ -n "$changed" ]; then
  [ "$changed" = yes ] || step "package $PACKAGE: $changed changed, rebuilding"
  [ "$changed" = yes ] && step "package $PACKAGE: building"
  scripts/build-package.sh "$PACKAGE"
fi

# --- tandem-server -----------------------------------------------------------------------------
step "tandem-server: cargo build"
cargo build --quiet -p tandem-server --bin tandem-server

# --- the example's link to the package ---------------------------------------------------------
mkdir -p examples/todo/node_modules
ln -sfn ../../../dist/tandem-sync examples/todo/node_modules/tandem-sync
step "examples/todo/node_modules/tandem-sync -> $PACKAGE"
