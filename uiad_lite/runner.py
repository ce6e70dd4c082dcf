"""Execute the chapter notebooks with papermill and turn the executed copies into a Jupyter Book.

The chapter sources are the jupytext percent files ``notebooks/NN_topic.py`` (the source of
truth). :func:`run_chapters` converts each to a notebook, injects parameters with papermill,
executes it with a per-cell timeout and writes ``<out>/executed/NN_topic.ipynb`` atomically: a
temporary file that is renamed only when every cell succeeded. A failing chapter leaves its
half-executed copy in ``<out>/failed/`` and never replaces a good one; the other chapters still run.

:func:`build_book` stages ``book/`` with the executed notebooks and plotly.js, writes the table of
contents and runs ``jupyter-book build`` with warnings as errors.

Execution cache: every executed copy carries, in its metadata (``uiad.cache_key``), a digest of what
made it: the chapter's source, the parameters, the package's source and the data version. A later run
with the same digest (and the chapter's results table as that run left it) reuses the copy and reports
``cached``; ``force=True`` (``--force``) re-executes. The book is rebuilt only when its inputs changed,
in a staging folder that replaces the old site only when the build succeeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
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
    force: bool = False

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
    status: str  # "ok", "cached" (an executed copy with the same cache key was reused) or "failed"
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
    if options.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: this machine has no CUDA device; use --device cpu or auto")
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
    with _terminate_as_interrupt():
        for chapter in bar:
            bar.set_postfix_str(chapter.name)
            results.append(run_chapter(chapter, options, out))
    return results


class _terminate_as_interrupt:
    """SIGTERM (a killed job, a closed terminal) unwinds like Ctrl-C, so the ``finally`` blocks and
    temporary folders clean up: an interrupted run leaves no ``OUT/work/*`` folder behind."""

    def __enter__(self):
        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread: leave the signal alone
            pass
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()


def package_digest() -> str:
    """A digest of the package's source: every ``.py`` and data file under ``uiad_lite/``."""
    package = Path(__file__).resolve().parent
    suffixes = (".py", ".csv", ".json", ".yml", ".yaml")
    files = sorted(
        path for path in package.rglob("*")
        if path.is_file() and path.suffix in suffixes and "__pycache__" not in path.parts
    )  # fmt: skip
    return _digest(
        *(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() for path in files)
    )


def data_version(options: RunOptions) -> str:
    """What identifies the data a run reads: the synthetic generator's version, or for a real dataset
    its folder with the count, total size and newest modification time of its files."""
    if options.dataset == "synthetic":
        from uiad_lite.data import synthetic

        return f"synthetic-{synthetic.VERSION}"
    from uiad_lite.data.loading import dataset_root

    root = dataset_root(options.dataset, options.data_root)
    count = size = newest = 0
    for folder, _, names in os.walk(root):
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            count, size, newest = count + 1, size + stat.st_size, max(newest, stat.st_mtime_ns)
    return f"{options.dataset}:{root.resolve()}:{count}:{size}:{newest}"


def cache_key(chapter: Chapter, options: RunOptions) -> dict:
    """The parts that decide a chapter's output, and their digest (``key``)."""
    parts = {
        "chapter_source": _digest(chapter.source.read_bytes()),
        "parameters": json.dumps(options.parameters(), sort_keys=True),
        "package_source": package_digest(),
        "data_version": data_version(options),
    }
    parts["key"] = _digest(*(f"{name}={value}".encode() for name, value in sorted(parts.items())))
    return parts


def _file_digest(path: Path) -> str | None:
    return _digest(path.read_bytes()) if path.exists() else None


def cached_result(chapter: Chapter, key: dict, out: Path) -> ChapterResult | None:
    """The chapter's executed copy when it was made with ``key`` and its results table is the one that
    run published; ``None`` when anything differs or cannot be read (then the chapter re-executes)."""
    import nbformat

    final = out / "executed" / f"{chapter.name}.ipynb"
    if not final.exists():
        return None
    try:
        metadata = nbformat.read(final, as_version=4).metadata.get("uiad", {})
    except Exception:  # truncated or corrupt copy: never used
        return None
    if metadata.get("cache_key") != key["key"]:
        return None
    if metadata.get("results_digest") != _file_digest(out / "results" / f"{chapter.name}.csv"):
        return None
    return ChapterResult(chapter.name, "cached", 0.0, output=final, details={"cache_key": key["key"]})


def run_chapter(chapter: Chapter, options: RunOptions, out: Path) -> ChapterResult:
    import jupytext
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    identity = cache_key(chapter, options)
    if not options.force:
        reused = cached_result(chapter, identity, out)
        if reused is not None:
            reused.seconds = time.perf_counter() - start
            return reused
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
        # papermill's client logs a warning for every comm a library opens without a frontend to answer
        # (dash, which open3d imports, opens one): the console shows the progress bar and the summary only
        papermill_log = logging.getLogger("papermill")
        saved_level = papermill_log.level
        papermill_log.setLevel(logging.ERROR)
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=options.parameters(),
                kernel_name="python3",
                progress_bar=options.progress,
                cwd=str(out / "work"),
                execution_timeout=options.cell_timeout,
                kernel_manager_class=ipc_kernel_manager_class(out / "logs" / f"{chapter.name}.kernel.log"),
            )
        except PapermillExecutionError as error:
            return _failed(chapter, executed, out, start, error.cell_index, f"{error.ename}: {error.evalue}")
        except Exception as error:  # timeouts, dead kernels, unreadable sources
            return _failed(chapter, executed, out, start, None, f"{type(error).__name__}: {error}")
        finally:
            papermill_log.setLevel(saved_level)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        result_notebook = nbformat.read(executed, as_version=4)
        hide_injected_parameters(result_notebook)
        drop_widget_state(result_notebook)
        fresh_table = staged_results / f"{chapter.name}.csv"
        result_notebook.metadata["uiad"] = {
            "cache_key": identity["key"],
            "cache_parts": {name: value for name, value in identity.items() if name != "key"},
            "results_digest": _file_digest(fresh_table),
        }
        # the table first, then the notebook: a copy whose table is missing or other is not reused
        publish_results(chapter.name, staged_results, out / "results")
        write_notebook_atomically(result_notebook, final)
    return ChapterResult(chapter.name, "ok", time.perf_counter() - start, output=final)


def ipc_kernel_manager_class(log_path: Path | None = None):
    """A kernel manager class whose kernels talk over local sockets (IPC), not TCP: nothing else on the
    machine can connect to them, and ipykernel has no reason to log its 'running over TCP without
    encryption' warning. The kernel process's own output (its log lines, a crash trace) goes to
    ``log_path`` instead of the run's console."""
    from jupyter_client.manager import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

        async def start_kernel(self, **kwargs):
            if log_path is None:
                return await super().start_kernel(**kwargs)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "wb") as stream:  # the kernel process keeps its own copy of the handle
                kwargs.setdefault("stdout", stream)
                kwargs.setdefault("stderr", stream)
                return await super().start_kernel(**kwargs)

    return IpcKernelManager


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


def stage_book(executed: list[Path], out: Path, root: Path | None = None, stage: Path | None = None) -> Path:
    """Copy ``book/`` and the executed notebooks into ``stage`` (default ``<out>/book``), add ``_toc.yml``."""
    root = root or project_root()
    stage = stage or Path(out).resolve() / "book"
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


BOOK_KEY_FILE = ".uiad-book-key"


def book_key(executed: list[Path], root: Path | None = None) -> str:
    """A digest of everything the site is made from: ``book/``, the executed notebooks (names and
    bytes), plotly.js and the package version."""
    from uiad_lite import __version__

    root = root or project_root()
    sources = sorted(p for p in (root / "book").rglob("*") if p.is_file() and "_build" not in p.parts)
    parts = [f"uiad-lite {__version__}".encode(), plotly_js_path().read_bytes()]
    parts += [p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() for p in sources]
    parts += [p.name.encode() + b"\0" + p.read_bytes() for p in executed]
    return _digest(*parts)


def build_book(
    executed: list[Path], out: Path, root: Path | None = None, strict: bool = True, force: bool = False
) -> Path:
    """Build the HTML book offline; return the path of ``index.html``. Warnings fail the build when strict.

    The site is built in a staging folder beside ``<out>/book`` that replaces it only after a successful
    build, so a failed or interrupted build leaves the previous site whole. When the inputs are the ones
    the current site was built from (:func:`book_key`), nothing is rebuilt unless ``force``.
    """
    out = Path(out).resolve()
    final = out / "book"
    index = final / "_build" / "html" / "index.html"
    key = book_key(executed, root) + ("-strict" if strict else "")
    marker = final / BOOK_KEY_FILE
    if not force and index.exists() and marker.exists() and marker.read_text().strip() == key:
        return index
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".book-staging.", dir=out))
    try:
        with _terminate_as_interrupt():
            stage_book(executed, out, root, stage=stage)
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
            if not (stage / "_build" / "html" / "index.html").exists():
                raise RuntimeError("jupyter-book reported success but wrote no index.html")
            (stage / BOOK_KEY_FILE).write_text(key + "\n")
            old = out / f".book-old.{os.getpid()}"
            if final.exists():
                os.replace(final, old)
            os.replace(stage, final)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return index
