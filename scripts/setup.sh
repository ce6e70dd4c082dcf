#!/usr/bin/env bash
# One-step set-up on a fresh Debian machine (as root, or with sudo): system packages, then the package.
#   libusb-1.0-0  needed by open3d 0.20
#   chromium      headless browser for the test that checks a figure is really drawn in the book
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  need=""
  dpkg -s libusb-1.0-0 >/dev/null 2>&1 || need="$need libusb-1.0-0"
  command -v chromium >/dev/null 2>&1 || need="$need chromium"
  if [ -n "$need" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
  fi
else
  echo "setup.sh: not a Debian machine; install libusb-1.0 and chromium yourself" >&2
fi
python -m pip install -q -e ".[dev]"
