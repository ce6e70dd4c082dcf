"""The newcomer's timings: set-up in a brand-new environment, `uiad-lite book` cold, then warm.

    .venv/bin/python benchmarks/book_bench.py                 # all three, into a temporary folder
    .venv/bin/python benchmarks/book_bench.py --skip-setup    # the book only, with this environment
    .venv/bin/python benchmarks/book_bench.py --json out.json

Step 1 runs ``scripts/setup.sh`` into a new virtual environment (``UIAD_VENV`` in a temporary folder,
installed from ``requirements.lock``; pip's download cache is whatever the machine has). Step 2 runs
``uiad-lite book`` *cold*: a new output folder, a new data folder (so the synthetic benchmark is generated)
and an empty feature cache. Step 3 runs the same command again, *warm*: nothing changed, so every chapter
should be ``cached`` and the site not rebuilt.

Targets (DESIGN.md §4, two CPU cores): set-up <= 5 min; book cold <= 20 min; book warm <= 1 min.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"setup_s": 300, "book_cold_s": 1200, "book_warm_s": 60}


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}"
                 f"\n{completed.stderr[-3000:]}")  # fmt: skip
    return seconds, completed.stdout


def statuses(summary: str) -> dict[str, str]:
    return dict(re.findall(r"^(\d\d_\w+)\s+(ok|cached|failed)\b", summary, flags=re.M))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-setup", action="store_true", help="time the book with this environment only")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="uiad-book-bench.") as scratch:
        scratch = Path(scratch)
        env = {
            **os.environ,
            "UIAD_DATA": str(scratch / "data"),
            "UIAD_FEATURE_CACHE": str(scratch / "features"),
        }
        uiad = Path(sys.executable).parent / "uiad-lite"
        if not args.skip_setup:
            venv = scratch / "venv"
            report["setup_s"], _ = timed(["bash", "scripts/setup.sh"], {**env, "UIAD_VENV": str(venv)})
            uiad = venv / "bin" / "uiad-lite"
        out = scratch / "build"
        command = [str(uiad), "book", "--out", str(out), "--no-progress"]
        report["book_cold_s"], cold = timed(command, env)
        report["book_warm_s"], warm = timed(command, env)
        report["cold_chapters"], report["warm_chapters"] = statuses(cold), statuses(warm)
    for name, value in report.items():
        if name in TARGETS:
            verdict = "ok" if value <= TARGETS[name] else "OVER TARGET"
            print(f"{name:12s} {value:8.1f} s   target <= {TARGETS[name]} s   {verdict}")
    print("cold:", report["cold_chapters"])
    print("warm:", report["warm_chapters"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
