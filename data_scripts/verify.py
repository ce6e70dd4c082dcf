"""Check a dataset folder offline: SHA-256 of any archive present, every category indexed by the loader
and one test sample of each read. Exit 1 on a problem (or when the dataset has no loader to check with).

python data_scripts/verify.py mvtec_3d --root /data/mvtec_3d
"""

from __future__ import annotations

import argparse
import sys

from uiad_lite.data.download import format_report, verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", help="dataset name, e.g. mvtec_ad")
    parser.add_argument("--root", help="dataset folder (default: $UIAD_DATA/<name>)")
    args = parser.parse_args(argv)
    try:
        report = verify(args.name, args.root)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
