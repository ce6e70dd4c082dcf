#!/usr/bin/env bash
# Regenerate requirements.lock: every dependency of the project and its dev extra, direct and
# transitive, pinned. Run scripts/check-latest.sh first; commit the lock only after the tests pass
# with it (bash scripts/setup.sh && .venv/bin/python -m pytest -q).
#
# Why uv (`uv pip compile`) and not pip-compile: it resolves from package metadata without building or
# downloading the multi-GB torch wheels, in seconds; `--universal` writes one file with environment
# markers that pip reads as constraints on every Python the project supports (>= 3.10). Where this
# machine caps releases to what lies on its disk (/etc/xdg/pip/constraints.txt: torch, torchvision),
# the cap is applied so that the lock names versions pip can install here.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$(mktemp -d)"
trap 'rm -rf "$TOOLS"' EXIT
python3 -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/python" -m pip install -q uv
caps=()
if [ -f /etc/xdg/pip/constraints.txt ]; then caps=(-c /etc/xdg/pip/constraints.txt); fi
"$TOOLS/venv/bin/uv" pip compile pyproject.toml --extra dev --universal --quiet \
  "${caps[@]}" --no-emit-package uiad-lite \
  --custom-compile-command "bash scripts/lock.sh" -o requirements.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) pins)"
