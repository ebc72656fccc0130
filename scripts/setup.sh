#!/usr/bin/env bash
# Installs what `npm test` / `npm start` need on a fresh Debian 12 machine that has only rustup
# (Rust toolchain), node and npm. Idempotent: when everything is present it only checks and
# finishes in a few seconds. Downloads come only from crates.io, npm and Debian apt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

step() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
command -v npm >/dev/null || die "npm not found: install Node.js 20+ first"

# --- Rust: wasm target -------------------------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "rust target wasm32-unknown-unknown: present"
else
  step "rust target wasm32-unknown-unknown: installing"
  rustup target add wasm32-unknown-unknown
fi

# --- wasm-bindgen CLI, pinned to the exact version in the root Cargo.toml -----------------------
# Accepts both `wasm-bindgen = "=X"` and `wasm-bindgen = { version = "=X", ... }`.
WASM_BINDGEN_VERSION="$(sed -nE 's/^[[:space:]]*wasm-bindgen[[:space:]]*=[[:space:]]*(\{[^}]*version[[:space:]]*=[[:space:]]*)?"=([0-9][^"]*)".*/\2/p' Cargo.toml | head -n1)"
[ -n "$WASM_BINDGEN_VERSION" ] || die 'root Cargo.toml must pin wasm-bindgen exactly: wasm-bindgen = "=X.Y.Z"'
installed_wb="$( (wasm-bindgen --version 2>/dev/null || true) | awk '{print $2}')"
if [ "$installed_wb" = "$WASM_BINDGEN_VERSION" ] && command -v wasm-bindgen-test-runner >/dev/null; then
  step "wasm-bindgen-cli $WASM_BINDGEN_VERSION: present"
else
  step "wasm-bindgen-cli $WASM_BINDGEN_VERSION: installing (found '${installed_wb:-none}'; takes a few minutes)"
  # No --locked: the crates index on these machines can lag the CLI's lockfile.
  cargo install --quiet --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# --- wasm-pack ---------------------------------------------------------------------------------
if command -v wasm-pack >/dev/null; then
  step "wasm-pack: present ($(wasm-pack --version 2>/dev/null | awk '{print $2}'))"
else
  step "wasm-pack: installing (takes a few minutes)"
  cargo install --quiet wasm-pack
fi

# --- Debian packages: headless Chromium + its WebDriver, NATS for the server's scale-out tests --
APT_PACKAGES=(chromium chromium-driver nats-server)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  step "apt packages ${APT_PACKAGES[*]}: present"
else
  step "apt packages: installing ${missing[*]}"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} with apt-get"
    SUDO=(sudo)
  fi
  apt_log="$(mktemp)"
  if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
         "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    die "apt-get install ${missing[*]} failed (full log: $apt_log)"
  fi
  rm -f "$apt_log"
fi
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing after install"
[ -x /usr/bin/chromedriver ] || die "/usr/bin/chromedriver missing after install"

# --- npm packages ------------------------------------------------------------------------------
# node_modules is up to date when it was installed from exactly this package-lock.json.
STAMP="node_modules/.tandem-setup-lock.sha256"
lock_hash="$(sha256sum package-lock.json | awk '{print $1}')"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_hash" ]; then
  step "npm packages: up to date"
else
  step "npm packages: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  mkdir -p node_modules
  printf '%s\n' "$lock_hash" >"$STAMP"
fi

step "done"
