#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine (as root, or with sudo):
#   1. system packages: python3-venv (where `python3 -m venv` cannot work), libusb-1.0-0 (open3d),
#      chromium (the headless browser the book test draws a figure in);
#   2. a virtual environment of its own in the checkout, .venv (PEP 668 forbids installing into the
#      system Python on Debian 12+ and Ubuntu 23.04+);
#   3. the project and its dev extra, every package pinned by requirements.lock (scripts/lock.sh).
# Afterwards: `.venv/bin/uiad-lite book`, `.venv/bin/python -m pytest -q`, or `source .venv/bin/activate`.
#
# Environment: PYTHON (default python3), UIAD_VENV (default .venv), UIAD_FRESH_VENV=1 deletes the
# environment first, UIAD_NO_LOCK=1 installs the newest releases instead (scripts/check-latest.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${UIAD_VENV:-.venv}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup.sh: no $PYTHON on this machine; install Python >= 3.11 (Debian: apt-get install python3)" >&2
  exit 1
fi
if ! "$PYTHON" -c "import sys; sys.exit(sys.version_info < (3, 11))"; then
  echo "setup.sh: $PYTHON is $("$PYTHON" -V 2>&1); uiad-lite needs Python >= 3.11 (set PYTHON=python3.11 or newer)" >&2
  exit 1
fi
if command -v apt-get >/dev/null 2>&1; then
  need=""
  "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 || need="$need python3-venv"
  dpkg -s libusb-1.0-0 >/dev/null 2>&1 || need="$need libusb-1.0-0"
  command -v chromium >/dev/null 2>&1 || need="$need chromium"
  if [ -n "$need" ]; then
    echo "setup.sh: installing Debian packages:$need"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
  fi
else
  echo "setup.sh: not a Debian machine; install python3-venv, libusb-1.0 and chromium yourself" >&2
fi

if [ "${UIAD_FRESH_VENV:-0}" = "1" ]; then rm -rf "$VENV"; fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup.sh: creating the virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# pip's own warnings about this machine's optional local package folders are noise to a reader
quiet_pip() {
  { "$VENV/bin/python" -m pip install -q "$@" 2>&1; } \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
if [ "${UIAD_NO_LOCK:-0}" = "1" ]; then
  echo "setup.sh: installing the newest releases (no lock)"
  quiet_pip -e ".[dev]"
else
  echo "setup.sh: installing the project at the versions in requirements.lock"
  quiet_pip -c requirements.lock -e ".[dev]"
fi
echo "setup.sh: ready. Use $VENV/bin/uiad-lite and $VENV/bin/python, or: source $VENV/bin/activate"
