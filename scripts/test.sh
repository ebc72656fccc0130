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

# with_test_server COMMAND...: runs COMMAND with a real tandem-server on a free loopback port (a
# throwaway data directory and secret), whose URL and tokens reach the browser tests at compile
# time (`option_env!` in tests/server_sync.rs): TANDEM_TEST_SERVER, TANDEM_TEST_TOKEN_WRITE,
# TANDEM_TEST_TOKEN_READ. The server is stopped when COMMAND ends, whatever the outcome. Runs in a
# subshell so its traps are its own.
with_test_server() (
  cargo build --quiet -p tandem-server --bin tandem-server || exit 1
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/tandem-test-server.XXXXXX")" || exit 1
  server_pid=
  command_pid=
  stop_server() {
    for pid in $command_pid $server_pid; do
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
      fi
    done
    rm -rf "$tmp"
  }
  trap stop_server EXIT
  trap 'exit 130' INT TERM
  secret="$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))')" || exit 1
  TANDEM_JWT_SECRET="$secret" "$CARGO_TARGET_DIR/debug/tandem-server" \
    --listen 127.0.0.1:0 --data "$tmp/data" --log-json >"$tmp/server.log" 2>&1 &
  server_pid=$!
  addr=
  for _ in $(seq 1 300); do
    addr="$(grep -m1 '"tandem-server ready"' "$tmp/server.log" 2>/dev/null | sed -nE 's/.*"addr":"([^"]+)".*/\1/p')"
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "tandem-server exited before it was ready" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$tmp/server.log" >&2; echo "tandem-server was not ready after 30 s" >&2; exit 1; }
  # HS256 tokens for the tests, valid for 6 hours (scripts/mint-token.mjs).
  export TANDEM_TEST_SERVER="ws://$addr"
  TANDEM_TEST_TOKEN_WRITE="$(TANDEM_JWT_SECRET="$secret" node scripts/mint-token.mjs --scope "read write" --sub wasm-tests)" || exit 1
  TANDEM_TEST_TOKEN_READ="$(TANDEM_JWT_SECRET="$secret" node scripts/mint-token.mjs --scope read --sub wasm-tests)" || exit 1
  export TANDEM_TEST_TOKEN_WRITE TANDEM_TEST_TOKEN_READ
  echo "==> tandem-server for the browser tests on $addr"
  # In the background, waited for: a signal to this shell interrupts the wait and stops both.
  "$@" &
  command_pid=$!
  wait "$command_pid"
  rc=$?
  command_pid=
  if [ $rc -ne 0 ]; then
    echo "==> tandem-server log (last 40 lines):" >&2
    tail -n 40 "$tmp/server.log" >&2
  fi
  exit $rc
)

# Native Rust: tandem-core, tandem-server and the wasm crate's host-side code.
suite rust cargo test --workspace --no-fail-fast
# The wasm crate in headless Chromium (tests/*.rs with run_in_browser; config in webdriver.json).
# `--lib --test '*'`: doctests compiled for wasm32 would "pass" without running (no wasm_bindgen_test
# in them); they run natively in the rust suite instead.
suite wasm with_test_server wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER" --mode no-install -- --lib --test '*'
# The TypeScript layer: Vitest in Node and jsdom (React hooks), type tests (scripts/test-js.sh).
suite vitest scripts/test-js.sh
# The packed npm package in a fresh Vite + React project, in Chromium and Node (scripts/test-package.sh).
suite package scripts/test-package.sh
# The example app (examples/todo) on real tandem-servers in headless Chromium: sync between pages,
# offline + reload, a SIGKILLed server, a read-only token (scripts/test-e2e.sh, e2e/).
suite e2e scripts/test-e2e.sh

for s in "${SELECTED[@]}"; do
  case " ${SUITES[*]} " in *" $s "*) ;; *) echo "==> unknown suite '$s' (suites: ${SUITES[*]})" >&2; exit 2 ;; esac
done
printf '\n==> all suites passed: %s\n' "$(IFS=,; echo "${PASSED[*]}" | sed 's/,/, /g')"
