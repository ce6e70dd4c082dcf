"""The ``uiad-lite`` command: run chapters, build the book, manage datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uiad_lite import __version__


def _chapter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "chapters",
        nargs="*",
        metavar="CHAPTER",
        help="chapters to run, e.g. 00 or 03_memory_bank or memory_bank (default: all, in order)",
    )
    parser.add_argument(
        "--dataset",
        default="synthetic",
        help="dataset name (default: synthetic, the embedded benchmark); see `uiad-lite data list`",
    )
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="folder holding the real dataset (default: $UIAD_DATA/<dataset>)",
    )
    parser.add_argument(
        "--categories",
        default=None,
        metavar="A,B",
        help="comma-separated categories (default: every category the chapter supports)",
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--quick",
        dest="quick",
        action="store_true",
        default=True,
        help="small settings, about a minute per chapter on two CPU cores (default)",
    )
    speed.add_argument(
        "--full",
        dest="quick",
        action="store_false",
        help="the papers' settings; meant for a GPU and the real datasets",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed passed to every chapter (default: 0)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build"),
        help="output folder for executed notebooks, results and the book (default: ./build)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=int,
        default=1200,
        metavar="SECONDS",
        help="papermill's limit for one cell (default: 1200)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.add_argument(
        "--force",
        action="store_true",
        help="re-execute every chosen chapter (and rebuild the book) even when an executed copy made "
        "from the same chapter source, parameters, package source and data version exists",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uiad-lite",
        description="uiad-lite: execute the workbook's chapters with papermill, build the Jupyter Book, "
        "and manage the datasets. With no options everything runs on the embedded synthetic benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"uiad-lite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="execute chapters with papermill and print a summary table",
        description="Execute the chosen chapters (default: all) with papermill. Executed "
        "notebooks go to OUT/executed, result tables to OUT/results, half-executed notebooks "
        "of failing chapters to OUT/failed. Exit code 1 when any chapter failed.",
    )
    _chapter_options(run)

    book = sub.add_parser(
        "book",
        help="run the chapters, then build the Jupyter Book (HTML, offline)",
        description="Run the chosen chapters like `run`, then build the Jupyter Book from the "
        "executed notebooks with warnings treated as errors, and print the path of index.html.",
    )
    _chapter_options(book)
    book.add_argument(
        "--no-execute",
        dest="execute",
        action="store_false",
        help="build from the notebooks already in OUT/executed instead of running them",
    )

    sub.add_parser("chapters", help="list the chapters")

    data = sub.add_parser("data", help="list, download, verify datasets or build the synthetic benchmark")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.add_parser("list", help="the dataset catalogue: setting, loader, how to download")
    download = data_sub.add_parser("download", help="download and verify a real dataset")
    download.add_argument("name")
    download.add_argument("--root", type=Path, default=None, help="target folder (default: $UIAD_DATA/NAME)")
    verify = data_sub.add_parser(
        "verify",
        help="check a dataset on disk: archive checksums, every category indexed, one test sample read; "
        "exit 1 on a problem",
    )
    verify.add_argument("name")
    verify.add_argument("--root", type=Path, default=None, help="dataset folder (default: $UIAD_DATA/NAME)")
    synthetic = data_sub.add_parser("synthetic", help="generate the synthetic benchmark now")
    synthetic.add_argument(
        "--root",
        type=Path,
        default=None,
        help="output folder (default: $UIAD_DATA/synthetic, else ~/.cache/uiad_lite/synthetic)",
    )
    synthetic.add_argument(
        "--size",
        choices=("tiny", "quick", "full"),
        default="quick",
        help="tiny: tests, quick: CPU, full: GPU",
    )
    synthetic.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    return parser


def _run_options(args) -> RunOptions:  # noqa: F821 (imported lazily)
    from uiad_lite.runner import RunOptions

    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    return RunOptions(
        dataset=args.dataset,
        data_root=args.data_root,
        categories=categories,
        quick=args.quick,
        device=args.device,
        seed=args.seed,
        out=args.out,
        cell_timeout=args.cell_timeout,
        progress=args.progress,
        force=args.force,
    )


def _execute(args):
    from uiad_lite import runner

    selected = runner.resolve_chapters(args.chapters)
    options = _run_options(args)
    runner.validate_options(options)
    results = runner.run_chapters(selected, options)
    print(runner.summary_table(results))
    for result in results:
        if result.status == "failed" and result.output is not None:
            print(f"{result.chapter}: half-executed notebook kept at {result.output}")
    return results


def _command_book(args) -> int:
    from uiad_lite import runner

    if args.execute:
        results = _execute(args)
        executed = [r.output for r in results if r.status in ("ok", "cached")]
        failed = any(r.status == "failed" for r in results)
    else:
        selected = runner.resolve_chapters(args.chapters)
        executed = [args.out.resolve() / "executed" / f"{c.name}.ipynb" for c in selected]
        missing = [str(p) for p in executed if not p.exists()]
        if missing:
            raise ValueError(f"no executed notebook at {', '.join(missing)}; run `uiad-lite run` first")
        failed = False
    index = runner.build_book(executed, args.out, force=args.force)
    print(index)
    return 1 if failed else 0


def _command_data(args) -> int:
    from uiad_lite.data import download as downloads
    from uiad_lite.data import synthetic

    if args.data_command == "list":
        import pandas as pd

        columns = ["name", "setting", "kind", "loader", "download", "n_categories", "licence"]
        table = pd.DataFrame(downloads.catalogue())
        print(table[[c for c in columns if c in table.columns]].to_string(index=False))
    elif args.data_command == "download":
        print(downloads.download(args.name, args.root))
    elif args.data_command == "verify":
        report = downloads.verify(args.name, args.root)
        print(downloads.format_report(report))
        return 0 if report["ok"] else 1
    elif args.data_command == "synthetic":
        print(synthetic.generate(root=args.root, size=args.size, seed=args.seed))
    else:
        print("usage: uiad-lite data {list,download,verify,synthetic}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "run":
            results = _execute(args)
            return 1 if any(r.status == "failed" for r in results) else 0
        if args.command == "book":
            return _command_book(args)
        if args.command == "chapters":
            from uiad_lite.runner import chapters

            for chapter in chapters():
                print(chapter.name)
            return 0
        return _command_data(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"uiad-lite: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
