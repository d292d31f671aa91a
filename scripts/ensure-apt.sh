#!/usr/bin/env bash
# ensure-apt.sh PACKAGE BINARY — install a Debian package if BINARY is missing.
# Used for chromium (browser tests) and graphviz (make diagrams).
set -euo pipefail
pkg="$1"; bin="$2"
if command -v "$bin" >/dev/null 2>&1; then exit 0; fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "error: '$bin' is missing; install Debian's '$pkg' package" >&2
  exit 1
fi
echo "==> installing Debian package $pkg"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "$pkg" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$pkg" >/dev/null; }
command -v "$bin" >/dev/null
