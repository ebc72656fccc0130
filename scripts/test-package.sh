#!/usr/bin/env bash
# The npm package as users get it (`npm test` suite "package"): built into dist/tandem-sync,
# packed, installed with Vite and React from the npm registry into a fresh project, type-checked,
# built without plugins and run in headless Chromium, on the dev server and in Node
# (js/package-test/run.mjs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-package.sh dist/tandem-sync
node js/package-test/run.mjs dist/tandem-sync
