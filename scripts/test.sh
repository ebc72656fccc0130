#!/usr/bin/env bash
# `npm test`: every test suite of the repo, in order, stopping at the first failure.
#
#   scripts/test.sh                 all suites
#   scripts/test.sh rust wasm       only the named suites (setup always runs)
#
# To add a suite, add one `suite NAME COMMAND...` line below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
# One target dir for native and wasm builds, shared by every suite.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Browser tests use Debian's chromedriver and /usr/bin/chromium with the capabilities in
# webdriver.json (read by wasm-bindgen-test-runner). Passing --chromedriver and --mode no-install
# makes wasm-pack fail rather than download chromedriver or wasm-bindgen from the internet.
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="${WASM_BINDGEN_TEST_WEBDRIVER_JSON:-$ROOT/webdriver.json}"

SELECTED=("$@")
PASSED=()
SUITES=()

selected() {
  [ ${#SELECTED[@]} -eq 0 ] && return 0
  local s
  for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

# suite NAME COMMAND...: runs COMMAND, or exits naming the suite that failed.
suite() {
  local name="$1"; shift
  SUITES+=("$name")
  selected "$name" || return 0
  printf '\n==> [%s] %s\n' "$name" "$*"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  if [ $rc -ne 0 ]; then
    printf '\n==> FAILED: suite "%s" (exit %d): %s\n' "$name" "$rc" "$*" >&2
    exit $rc
  fi
  PASSED+=("$name ($((SECONDS - start))s)")
}

scripts/setup.sh

# Native Rust: tandem-core, tandem-server and the wasm crate's host-side code.
suite rust cargo test --workspace --no-fail-fast
# The wasm crate in headless Chromium (tests/*.rs with run_in_browser; config in webdriver.json).
# `--lib --test '*'`: doctests compiled for wasm32 would "pass" without running (no wasm_bindgen_test
# in them); they run natively in the rust suite instead.
suite wasm wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER" --mode no-install -- --lib --test '*'

for s in "${SELECTED[@]}"; do
  case " ${SUITES[*]} " in *" $s "*) ;; *) echo "==> unknown suite '$s' (suites: ${SUITES[*]})" >&2; exit 2 ;; esac
done
printf '\n==> all suites passed: %s\n' "$(IFS=,; echo "${PASSED[*]}" | sed 's/,/, /g')"
