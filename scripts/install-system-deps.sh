#!/usr/bin/env bash
# Debian packages the tests use beyond what `salesflow dev up` installs itself (Java, Maven, PostgreSQL):
# kcat, a Kafka client that is not ours. Installs only what is missing; needs root (or sudo).
set -euo pipefail

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
# Prometheus and promtool: the SLO rule checks and unit tests, and the e2e test's Prometheus server.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
