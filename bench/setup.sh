#!/usr/bin/env bash
# Installs what `npm run bench` needs beyond Node: wrk (the HTTP load generator), and checks for the
# openssl CLI (the OCSP peer) and unshare/ip (the peer's private network namespace).
# Debian/Ubuntu, as root (CI and the dev machines run as root). Safe to run again.
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench/setup.sh: wrk, openssl, unshare and ip are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/setup.sh: missing ${missing[*]}; install as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench/setup.sh: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
  exit 1
fi

echo "bench/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
echo "bench/setup.sh: done ($(wrk --version 2>&1 | head -1))"
