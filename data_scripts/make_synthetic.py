"""Generate the embedded synthetic benchmark (normally done on first use) and report how long it took.

python data_scripts/make_synthetic.py --size quick --seed 0
python data_scripts/make_synthetic.py --size full --root /data/synthetic --workers 8
"""

from __future__ import annotations

import argparse
import sys
import time

from uiad_lite.data import synthetic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="quick", choices=sorted(synthetic.SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--root", help="base folder (default: $UIAD_DATA/synthetic or ~/.cache/uiad_lite/synthetic)"
    )
    parser.add_argument("--workers", type=int, help="processes (default: one per CPU, at most 4)")
    args = parser.parse_args(argv)
    start_wall = time.perf_counter()
    folder = synthetic.generate(args.root, size=args.size, seed=args.seed, workers=args.workers)
    print(f"{folder}  ({time.perf_counter() - start_wall:.1f} s wall; an existing folder is reused as is)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
