#!/usr/bin/env bash
# Vendors the console's browser assets from the npm registry into the package, pinned, with
# their licences: htmx (partial page updates) and Chart.js (the overview's charts). Each
# tarball is fetched with `npm pack` into a temporary folder and checked against the
# integrity the registry publishes (`npm view NAME@VERSION dist.integrity`) before a file of
# it is copied. The copies are committed, so the console works with no network at all; run
# this again only to change a version (then commit what it wrote).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=src/tier2/entrypoints/http/console/static/vendor
HTMX_VERSION=2.0.11
CHARTJS_VERSION=4.6.1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fetch() {  # NAME VERSION: the package's tarball unpacked in $WORK/NAME, integrity checked
  local name=$1 version=$2 expected tarball actual
  expected=$(timeout 120 npm view "$name@$version" dist.integrity)
  tarball=$(cd "$WORK" && timeout 300 npm pack --silent "$name@$version" | tail -n 1)
  actual="sha512-$(openssl dgst -sha512 -binary "$WORK/$tarball" | base64 -w 0)"
  if [ "$actual" != "$expected" ]; then
    echo "vendor-assets: $name@$version: integrity $actual, the registry says $expected" >&2
    exit 1
  fi
  mkdir -p "$WORK/$name"
  tar -xzf "$WORK/$tarball" -C "$WORK/$name"
  echo "$name@$version $expected" >>"$WORK/VERSIONS"
}

fetch htmx.org "$HTMX_VERSION"
fetch chart.js "$CHARTJS_VERSION"

mkdir -p "$DEST"
rm -f "$DEST"/*
cp "$WORK/htmx.org/package/dist/htmx.min.js" "$DEST/htmx.min.js"
cp "$WORK/htmx.org/package/LICENSE" "$DEST/htmx.LICENSE"
cp "$WORK/chart.js/package/dist/chart.umd.min.js" "$DEST/chart.umd.min.js"
cp "$WORK/chart.js/package/LICENSE.md" "$DEST/chart.js.LICENSE.md"
cp "$WORK/VERSIONS" "$DEST/VERSIONS"
echo "vendored into $DEST:" >&2
cat "$DEST/VERSIONS" >&2
