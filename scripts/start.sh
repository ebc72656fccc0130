#!/usr/bin/env bash
# `npm start`: the example app (examples/todo) on a real tandem-server, from a fresh machine.
#
#   1. scripts/setup.sh                      installs what is missing
#   2. scripts/build-example.sh              the npm package (if its sources changed), the server binary
#   3. tandem-server on 127.0.0.1:8787, its embedded store in ./tandem-data, a development secret
#   4. the Vite dev server on http://127.0.0.1:5173 with a development token (valid 30 days)
#
# Ctrl-C stops both. Environment: TANDEM_PORT (8787), TANDEM_APP_PORT (5173), TANDEM_DATA
# (./tandem-data), TANDEM_WORKSPACE (todo), TANDEM_JWT_SECRET (default: a fixed development
# secret — never use it for a server others can reach).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

SERVER_PORT="${TANDEM_PORT:-8787}"
APP_PORT="${TANDEM_APP_PORT:-5173}"
DATA="${TANDEM_DATA:-./tandem-data}"
WORKSPACE="${TANDEM_WORKSPACE:-todo}"
LOG="$ROOT/tandem-server.log"
DEV_SECRET=0
if [ -z "${TANDEM_JWT_SECRET:-}" ]; then
  TANDEM_JWT_SECRET=tandem-development-secret-do-not-use-in-production
  DEV_SECRET=1
fi
export TANDEM_JWT_SECRET

say() { printf '[start] %s\n' "$*"; }
die() { printf '[start] ERROR: %s\n' "$*" >&2; exit 1; }

scripts/setup.sh
scripts/build-example.sh

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free "$SERVER_PORT" || die "port $SERVER_PORT is in use (another npm start?): stop it, or set TANDEM_PORT"
port_free "$APP_PORT" || die "port $APP_PORT is in use (another npm start?): stop it, or set TANDEM_APP_PORT"

server_pid=
vite_pid=
stop() {
  trap - EXIT INT TERM
  local pid
  for pid in $vite_pid $server_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $vite_pid $server_pid; do wait "$pid" 2>/dev/null || true; done
  [ -n "$server_pid" ] && say "stopped"
}
trap stop EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

mkdir -p "$DATA"
: >"$LOG"
NO_COLOR=1 "$CARGO_TARGET_DIR/debug/tandem-server" --listen "127.0.0.1:$SERVER_PORT" --data "$DATA" >>"$LOG" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q 'tandem-server ready' "$LOG" && break
  kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$LOG" >&2; die "tandem-server exited (log: $LOG)"; }
  sleep 0.1
done
grep -q 'tandem-server ready' "$LOG" || die "tandem-server was not ready after 30 s (log: $LOG)"
say "tandem-server on ws://127.0.0.1:$SERVER_PORT (data: $DATA, log: $LOG)"

token="$(node scripts/mint-token.mjs --scope "read write" --ttl $((30 * 24 * 3600)) --sub npm-start)"
VITE_TANDEM_URL="ws://127.0.0.1:$SERVER_PORT" VITE_TANDEM_WORKSPACE="$WORKSPACE" VITE_TANDEM_TOKEN="$token" \
  node_modules/.bin/vite examples/todo --host 127.0.0.1 --port "$APP_PORT" --strictPort --clearScreen false \
  --logLevel warn &
vite_pid=$!
for _ in $(seq 1 300); do
  curl -sf -o /dev/null "http://127.0.0.1:$APP_PORT/" && break
  kill -0 "$vite_pid" 2>/dev/null || die "the Vite dev server exited"
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$APP_PORT/" || die "the Vite dev server did not answer after 30 s"

cat <<EOF

  Tandem todo example:  http://127.0.0.1:$APP_PORT

  tandem-server:  ws://127.0.0.1:$SERVER_PORT   workspace "$WORKSPACE", data in $DATA, log in ${LOG#"$ROOT/"}
  Open it in two windows and watch them sync; tick "Work offline" in one, edit, reload, untick.
EOF
[ "$DEV_SECRET" = 1 ] && echo "  Signed with a development secret: never expose this server."
printf '\n  Ctrl-C stops both.\n\n'

# Whichever stops first (a crash, or Ctrl-C in the trap) stops the other.
rc=0
wait -n "$server_pid" "$vite_pid" || rc=$?
if kill -0 "$server_pid" 2>/dev/null; then say "the Vite dev server stopped (exit $rc)"; else tail -n 20 "$LOG" >&2; say "tandem-server stopped (exit $rc)"; fi
exit 1
