#!/usr/bin/env bash
# Build the JavaScript guest (app.js) into a wasi:http/proxy component.
#
#   guest-examples/js/build.sh [OUT_DIR]
#
# Writes OUT_DIR/app.wasm. OUT_DIR defaults to target/ next to this script; a
# relative OUT_DIR is taken relative to the caller's working directory. Works
# from any cwd. Needs node (>= 20) and npm; `npm ci` runs only when
# node_modules is missing or was installed from a different package-lock.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

out="${1:-$here/target}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cd "$here"

# node_modules is up to date when it was installed from this exact lockfile
# (content hash, not mtime: a fresh checkout gives every file a new mtime).
stamp="node_modules/.cheroot-lock.sha256"
want="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "build.sh: npm ci (node_modules missing or out of date)" >&2
  start=$SECONDS
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
  echo "build.sh: npm ci took $((SECONDS - start))s" >&2
fi

start=$SECONDS
# --wit: wit/world.wit (world `app` = wasi:http/proxy@0.2.10, see its comment) with its deps.
# The fetch-event feature (on by default) binds the incoming-handler export to
# the `fetch` event listener registered in app.js.
node node_modules/@bytecodealliance/componentize-js/src/cli.js \
  --wit wit --world-name app \
  --out "$out/app.wasm.tmp" \
  app.js
mv "$out/app.wasm.tmp" "$out/app.wasm"
echo "build.sh: componentize took $((SECONDS - start))s -> $out/app.wasm ($(stat -c %s "$out/app.wasm") bytes)" >&2
