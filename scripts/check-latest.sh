#!/usr/bin/env bash
# The second path: a throw-away environment with the newest releases pip resolves today (no lock),
# then the unit tests and chapter 01 executed. Run it before scripts/lock.sh; it prints the versions
# of the packages that broke the book before (plotly, pandas, numpy, narwhals, myst-nb, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
UIAD_VENV="$WORK/venv" UIAD_NO_LOCK=1 bash scripts/setup.sh
echo "check-latest: set-up took $(( $(date +%s) - start )) s"
"$WORK/venv/bin/python" -m pip list --format=freeze 2>/dev/null \
  | grep -iE '^(torch|torchvision|timm|numpy|pandas|plotly|narwhals|scipy|scikit-learn|open3d|papermill|ipykernel|jupyter.client|myst-nb|jupyter-book|sphinx)==' || true
"$WORK/venv/bin/python" -m pytest -q -m "not slow and not bench" -p no:cacheprovider
"$WORK/venv/bin/uiad-lite" run 01_datasets --out "$WORK/build" --no-progress
echo "check-latest: passed in $(( $(date +%s) - start )) s"
