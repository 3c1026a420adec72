#!/usr/bin/env bash
# Install the Debian packages the tests need (PostgreSQL, Redis, Chromium) when missing.
# Prints one clear line and exits 3 when it cannot install (not root, no apt-get).
set -u
packages=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "cannot install Debian packages ${missing[*]} (needs root and apt-get): tests that need them are skipped"
  exit 3
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
