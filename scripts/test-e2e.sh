#!/usr/bin/env bash
# `npm test` suite "e2e": the example app (examples/todo) as users run it — type-checked and
# `vite build`-built against the built package — driven in headless Chromium (playwright-core)
# against real tandem-server processes (e2e/*.test.mjs, node:test). Builds what it needs
# (scripts/build-example.sh). Each test file starts its own server (own data directory, secret
# and workspaces) and browser and stops them when it ends, whatever the outcome.
#
#   scripts/test-e2e.sh                               every test
#   scripts/test-e2e.sh e2e/offline-reload.test.mjs   one file
#   scripts/test-e2e.sh --test-name-pattern=SIGKILL   node --test options
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

options=()
files=()
for arg in "$@"; do
  case "$arg" in -*) options+=("$arg") ;; *) files+=("$arg") ;; esac
done
[ ${#files[@]} -gt 0 ] || files=(e2e/*.test.mjs)

scripts/build-example.sh
echo "[e2e] type-checking examples/todo against the package's declarations"
node_modules/.bin/tsc -p examples/todo

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tandem-e2e-app.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "[e2e] vite build examples/todo"
node_modules/.bin/vite build examples/todo --outDir "$tmp/app" --emptyOutDir --logLevel warn

export TANDEM_E2E_APP="$tmp/app"
export TANDEM_E2E_SERVER_BIN="$CARGO_TARGET_DIR/debug/tandem-server"
node --test --test-concurrency=1 --test-reporter=spec "${options[@]}" "${files[@]}"
