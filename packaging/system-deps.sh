#!/usr/bin/env bash
# Install the Debian packages listed in debian-packages.txt that are missing. Its python3-*
# packages are named for $PYTHON's version (python3.12-dev for PYTHON=python3.12) when it is the
# distribution's: the headers and venv must be those of the Python that make builds .venv with.
# Quick (one dpkg query) when everything is already there. Elsewhere (macOS, Fedora) it says
# what to install and how to leave the step out: `make run SYSTEM_DEPS=`.
# Nothing before the apt check needs bash 4 (macOS ships bash 3.2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
list="$here/debian-packages.txt"
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    {
        echo "Tingxie: not a Debian/Ubuntu system (no dpkg-query or apt-get), so the system"
        echo "packages cannot be installed for you. Install their equivalents with your package"
        echo "manager (Homebrew: portaudio libsndfile espeak-ng), as listed in $list:"
        # One line a group: its title (the first comment line) and its packages.
        awk 'function flush() { if (pkgs) print "  " what ": " pkgs; what = pkgs = "" }
             !NF  { flush(); next }
             /^#/ { if (pkgs) flush(); if (what == "") what = substr($0, 3); next }
                  { pkgs = pkgs (pkgs ? " " : "") $1 }
             END  { flush() }' "$list"
        echo "then run make with the step left out: make run SYSTEM_DEPS= (or make test SYSTEM_DEPS=)"
    } >&2
    exit 1
fi
# A Python of the distribution (dpkg owns its executable) gets its own python3.X-* packages; one
# built by pyenv, uv or by hand has its venv and headers already, and no such package exists.
version=3
read -r -d '' pyversion pyexe < <("${PYTHON:-python3}" -c 'import os, sys
print("%d.%d" % sys.version_info[:2], os.path.realpath(sys.executable))' 2>/dev/null) || true
if [ -n "${pyexe:-}" ] && dpkg -S "$pyexe" >/dev/null 2>&1; then version=$pyversion; fi
mapfile -t wanted < <(grep -v '^\s*#' "$list" | grep -v '^\s*$' | sed "s/^python3-/python$version-/")
missing=()
for pkg in "${wanted[@]}"; do
    # The installed state alone: a held package ("hold ok installed") is installed too.
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
        echo "Missing system packages (${missing[*]}) and no root: install them with apt-get." >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
