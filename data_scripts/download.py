"""Download (or explain how to get) a dataset of the survey, then check its layout.

    python data_scripts/download.py --list
    python data_scripts/download.py visa --root /data/visa
    python data_scripts/download.py mvtec_ad --root /data/mvtec_ad     # prints the licence steps

The same is available as `uiad-lite data download`; this script only needs the package installed.
"""

from __future__ import annotations

import argparse
import sys

from uiad_lite.data.download import ManualDownloadRequired, catalogue, download, format_report, verify


def print_catalogue() -> None:
    print(f"{'name':18} {'setting':8} {'loader':7} {'download':10} title")
    for row in catalogue():
        print(
            f"{row['name']:18} {row['setting']:8} {str(row['loader']):7} {row['download']:10} {row['title']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", help="dataset name (see --list)")
    parser.add_argument("--root", help="target folder (default: $UIAD_DATA/<name>)")
    parser.add_argument("--retries", type=int, default=3, help="resume attempts per archive within this run")
    parser.add_argument("--list", action="store_true", help="print the dataset catalogue and exit")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        print_catalogue()
        return 0
    try:
        root = download(args.name, args.root, retries=args.retries)
    except ManualDownloadRequired as instructions:
        print(instructions)
        return 2
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = verify(args.name, root)
    print(format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
