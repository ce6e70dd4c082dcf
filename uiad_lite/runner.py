"""Execute the chapter notebooks with papermill and turn the executed copies into a Jupyter Book.

The chapter sources are the jupytext percent files ``notebooks/NN_topic.py`` (the source of
truth). :func:`run_chapters` converts each to a notebook, injects parameters with papermill,
executes it with a per-cell timeout and writes ``<out>/executed/NN_topic.ipynb`` atomically: a
temporary file that is renamed only when every cell succeeded. A failing chapter leaves its
half-executed copy in ``<out>/failed/`` and never replaces a good one; the other chapters still run.

:func:`build_book` stages ``book/`` with the executed notebooks and plotly.js, writes the table of
contents and runs ``jupyter-book build`` with warnings as errors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")
CHAPTER_PATTERN = re.compile(r"^(\d\d)_([a-z0-9_]+)\.py$")
HIDE_TAG = "hide-cell"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class ChapterError(ValueError):
    """A chapter name that matches no chapter."""


@dataclass(frozen=True)
class Chapter:
    """One chapter: ``00_introduction`` from ``notebooks/00_introduction.py``."""

    name: str
    source: Path

    @property
    def number(self) -> str:
        return self.name[:2]

    @property
    def topic(self) -> str:
        return self.name[3:]


@dataclass
class RunOptions:
    """The parameters every chapter's ``parameters`` cell accepts, plus runner settings."""

    dataset: str = "synthetic"
    data_root: str | None = None
    categories: list[str] | None = None
    quick: bool = True
    device: str = "auto"
    seed: int = 0
    out: Path = Path("build")
    cell_timeout: int = 1200
    progress: bool = True

    def parameters(self) -> dict:
        return {
            "DATASET": self.dataset,
            "DATA_ROOT": self.data_root,
            "CATEGORIES": self.categories,
            "QUICK": self.quick,
            "DEVICE": self.device,
            "SEED": self.seed,
        }


@dataclass
class ChapterResult:
    chapter: str
    status: str  # "ok" or "failed"
    seconds: float
    output: Path | None = None
    error: str = ""
    failed_cell: int | None = None
    details: dict = field(default_factory=dict)


def project_root() -> Path:
    """The checkout holding ``notebooks/`` and ``book/`` ($UIAD_PROJECT, the package's parent, or cwd)."""
    candidates = [os.environ.get("UIAD_PROJECT"), Path(__file__).resolve().parents[1], Path.cwd()]
    for candidate in candidates:
        if candidate and (Path(candidate) / "notebooks").is_dir() and (Path(candidate) / "book").is_dir():
            return Path(candidate)
    raise FileNotFoundError(
        "cannot find the uiad-lite checkout (a folder with notebooks/ and book/): run from the "
        "repository root or set UIAD_PROJECT"
    )


def chapters(root: Path | None = None) -> list[Chapter]:
    """All chapters, in order."""
    folder = (root or project_root()) / "notebooks"
    found = [
        Chapter(path.stem, path) for path in sorted(folder.glob("*.py")) if CHAPTER_PATTERN.match(path.name)
    ]
    return found


def resolve_chapters(names: list[str] | None, root: Path | None = None) -> list[Chapter]:
    """Map user spellings (``00``, ``introduction``, ``00_introduction``) to chapters."""
    available = chapters(root)
    if not names:
        return available
    chosen = []
    for name in names:
        matches = [c for c in available if name in (c.name, c.number, c.topic)]
        if len(matches) != 1:
            valid = ", ".join(c.name for c in available)
            raise ChapterError(f"unknown chapter {name!r}; valid chapters: {valid}")
        chosen.append(matches[0])
    return chosen


def validate_options(options: RunOptions) -> None:
    """Reject what would fail inside every chapter, before the first one starts: an unknown dataset,
    device or category, a dataset without a loader, a missing data folder, a negative seed."""
    from uiad_lite.data import DATASETS, categories, info

    if options.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {options.dataset!r}; valid datasets: {', '.join(DATASETS)}")
    if options.dataset != "synthetic" and not info(options.dataset).loader:
        loadable = [name for name in DATASETS if name == "synthetic" or info(name).loader]
        raise ValueError(f"dataset {options.dataset!r} has no loader yet; loadable: {', '.join(loadable)}")
    if options.device not in DEVICES:
        raise ValueError(f"unknown device {options.device!r}; valid devices: {', '.join(DEVICES)}")
    if options.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {options.seed}")
    if options.data_root is not None and not Path(options.data_root).is_dir():
        raise ValueError(f"--data-root {options.data_root!r} is not a folder")
    if options.categories:
        try:
            known = categories(options.dataset, options.data_root)
        except (FileNotFoundError, ValueError) as error:
            raise ValueError(f"cannot list the categories of {options.dataset}: {error}") from None
        unknown = [name for name in options.categories if name not in known]
        if unknown:
            raise ValueError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} for "
                f"{options.dataset}; valid categories: {', '.join(known)}"
            )


def run_chapters(selected: list[Chapter], options: RunOptions) -> list[ChapterResult]:
    """Execute chapters one after the other; a failure is reported and the next chapter runs."""
    from tqdm.auto import tqdm

    validate_options(options)
    out = Path(options.out).resolve()
    for sub in ("executed", "failed", "results", "work"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    results = []
    bar = tqdm(selected, desc="chapters", unit="chapter", disable=not options.progress)
    for chapter in bar:
        bar.set_postfix_str(chapter.name)
        results.append(run_chapter(chapter, options, out))
    return results


def run_chapter(chapter: Chapter, options: RunOptions, out: Path) -> ChapterResult:
    import jupytext
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    final = out / "executed" / f"{chapter.name}.ipynb"
    notebook = jupytext.read(chapter.source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata.pop("jupytext", None)
    with tempfile.TemporaryDirectory(prefix=f"{chapter.name}.", dir=out / "work") as staging:
        source = Path(staging) / f"{chapter.name}.ipynb"
        executed = Path(staging) / f"{chapter.name}.executed.ipynb"
        nbformat.write(notebook, source)
        staged_results = stage_results(chapter.name, out / "results", Path(staging) / "results")
        # TQDM_DISABLE: progress bars would be saved as widgets whose JavaScript the static book
        # would fetch from a CDN; the runner shows its own progress instead. UIAD_STATIC: the same
        # for uiad_lite.widgets, which then shows plotly figures instead of live explorers.
        environment = {
            "UIAD_RESULTS": str(staged_results),
            "PYTHONHASHSEED": "0",
            "TQDM_DISABLE": "1",
            "UIAD_STATIC": "1",
        }
        saved = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=options.parameters(),
                kernel_name="python3",
                progress_bar=options.progress,
                cwd=str(out / "work"),
                execution_timeout=options.cell_timeout,
            )
        except PapermillExecutionError as error:
            return _failed(chapter, executed, out, start, error.cell_index, f"{error.ename}: {error.evalue}")
        except Exception as error:  # timeouts, dead kernels, unreadable sources
            return _failed(chapter, executed, out, start, None, f"{type(error).__name__}: {error}")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        result_notebook = nbformat.read(executed, as_version=4)
        hide_injected_parameters(result_notebook)
        drop_widget_state(result_notebook)
        write_notebook_atomically(result_notebook, final)
        publish_results(chapter.name, staged_results, out / "results")
    return ChapterResult(chapter.name, "ok", time.perf_counter() - start, output=final)


def stage_results(chapter: str, published: Path, staging: Path) -> Path:
    """A results folder for one run of ``chapter``: the other chapters' tables (a chapter may read
    them), but none of this chapter's old rows, so that its new table holds only this run's rows."""
    staging.mkdir(parents=True, exist_ok=True)
    for table in sorted(published.glob("*.csv")):
        if table.stem != chapter:
            shutil.copyfile(table, staging / table.name)
    return staging


def publish_results(chapter: str, staging: Path, published: Path) -> None:
    """After a successful run: the chapter's new table replaces its old one (renamed into place); a run
    that recorded nothing removes the old one. A failed run never gets here, so its old table stays."""
    published.mkdir(parents=True, exist_ok=True)
    fresh, current = staging / f"{chapter}.csv", published / f"{chapter}.csv"
    if fresh.exists():
        handle, temporary = tempfile.mkstemp(prefix=f".{chapter}.", suffix=".tmp", dir=published)
        os.close(handle)
        shutil.copyfile(fresh, temporary)
        os.replace(temporary, current)
    else:
        current.unlink(missing_ok=True)


def _failed(chapter, executed, out, start, cell_index, message) -> ChapterResult:
    kept = None
    if executed.exists():
        kept = out / "failed" / f"{chapter.name}.ipynb"
        shutil.copyfile(executed, kept)
    return ChapterResult(
        chapter.name,
        "failed",
        time.perf_counter() - start,
        output=kept,
        error=message,
        failed_cell=cell_index,
    )


def hide_injected_parameters(notebook) -> None:
    """Tag papermill's injected-parameters cell so the book hides it behind a toggle (kept, not deleted)."""
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and HIDE_TAG not in tags:
            cell.metadata["tags"] = [*tags, HIDE_TAG]


def drop_widget_state(notebook) -> None:
    """Remove ipywidgets outputs and state: dead without a kernel, and they pull JavaScript from a CDN.

    A widget output's other representation is only the widget's repr (e.g. a progress bar frozen at 0 %),
    so the whole output goes; outputs without a widget (text, HTML, plotly) are kept.
    """
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]


def write_notebook_atomically(notebook, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            nbformat.write(notebook, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def summary_table(results: list[ChapterResult]) -> str:
    """A plain-text table: chapter, status, seconds, and the failing cell and error when there is one."""
    rows = [("chapter", "status", "seconds", "error")]
    for result in results:
        where = f"cell {result.failed_cell}: " if result.failed_cell is not None else ""
        first_line, *more = result.error.strip().splitlines() or [""]
        error = (where + first_line)[:160]
        if more or len(where + first_line) > 160:
            error += f" ... (whole error in {result.output})" if result.output else " ..."
        rows.append((result.chapter, result.status, f"{result.seconds:.1f}", error))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(row[i].ljust(widths[i]) for i in range(3)) + ("  " + row[3] if row[3] else "")
        for row in rows
    ]
    return "\n".join(lines)


def plotly_js_path() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise FileNotFoundError(f"plotly.js not found at {path}; reinstall plotly")
    return path


def stage_book(executed: list[Path], out: Path, root: Path | None = None) -> Path:
    """Copy ``book/`` and the executed notebooks into ``<out>/book``, write ``_toc.yml``."""
    root = root or project_root()
    stage = Path(out).resolve() / "book"
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(root / "book", stage, ignore=shutil.ignore_patterns("_build", "_toc.yml"))
    (stage / "_static").mkdir(exist_ok=True)
    shutil.copyfile(plotly_js_path(), stage / "_static" / "plotly.min.js")
    chapters_dir = stage / "chapters"
    chapters_dir.mkdir()
    for path in executed:
        shutil.copyfile(path, chapters_dir / path.name)
    toc = ["format: jb-book", "root: intro", "chapters:"]
    toc += [f"- file: chapters/{path.stem}" for path in executed]
    toc += ["- file: bibliography"]
    (stage / "_toc.yml").write_text("\n".join(toc) + "\n")
    return stage


def build_book(executed: list[Path], out: Path, root: Path | None = None, strict: bool = True) -> Path:
    """Build the HTML book offline; return the path of ``index.html``. Warnings fail the build when strict."""
    stage = stage_book(executed, out, root)
    command = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(stage),
        "--builder",
        "html",
    ]
    if strict:
        command += ["-W", "--keep-going"]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        log = (completed.stdout + completed.stderr)[-4000:]
        raise RuntimeError(f"jupyter-book build failed (exit {completed.returncode}):\n{log}")
    index = stage / "_build" / "html" / "index.html"
    if not index.exists():
        raise RuntimeError(f"jupyter-book reported success but {index} does not exist")
    return index
