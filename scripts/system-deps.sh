#!/usr/bin/env bash
# Installs the Debian packages the build (gcc for the router), the lab, the benchmarks and
# the tests need (as root, once).
set -euo pipefail
packages=(gcc libc6-dev dnsmasq-base nftables iproute2 wrk nginx-light docker-registry graphviz squid)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: not root; skipping Debian packages: ${missing[*]} (lab tests will be skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
