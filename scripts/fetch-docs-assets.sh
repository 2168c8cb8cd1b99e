#!/usr/bin/env bash
# The site's Mermaid renderer (the flow diagrams), from the npm registry: Material for MkDocs would
# otherwise load it from a CDN when a page opens, and the site is meant to work offline. Pinned; fetched
# once into .cache/docs/, which docs/gen_pages.py copies into the build.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=11.12.0
DEST=.cache/docs/mermaid-$VERSION.min.js
[ -f "$DEST" ] && exit 0
command -v npm >/dev/null || { echo "npm is needed for the site's Mermaid renderer (scripts/install-system-deps.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "mermaid@$VERSION" --silent >/dev/null)  # npm checks the tarball's integrity
tar -xzf "$tmp/mermaid-$VERSION.tgz" -C "$tmp" package/dist/mermaid.min.js
mkdir -p .cache/docs
mv "$tmp/package/dist/mermaid.min.js" "$DEST"
