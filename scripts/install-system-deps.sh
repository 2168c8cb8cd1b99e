#!/usr/bin/env bash
# Debian packages the tests use beyond what `salesflow dev up` installs itself (Java, Maven, PostgreSQL):
# kcat, a Kafka client that is not ours. Installs only what is missing; needs root (or sudo).
set -euo pipefail

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
# Prometheus and promtool: the SLO rule checks and unit tests, and the e2e test's Prometheus server.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The docs: npm fetches the site's Mermaid renderer (scripts/fetch-docs-assets.sh); Chromium and its
# driver open the built site in tests/integration/test_docs_browser.py.
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
