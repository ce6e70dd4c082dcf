"""Shared fixtures: executed chapters (run once per test session, on demand) and a temp results folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from uiad_lite import runner

CHAPTER_CELL_TIMEOUT = int(os.environ.get("UIAD_TEST_CELL_TIMEOUT", "600"))


@pytest.fixture(scope="session", autouse=True)
def _session_feature_cache(tmp_path_factory):
    """One feature cache for the whole test session (chapters' kernels inherit it), never the user's."""
    previous = os.environ.get("UIAD_FEATURE_CACHE")
    os.environ["UIAD_FEATURE_CACHE"] = str(tmp_path_factory.mktemp("feature_cache"))
    yield
    if previous is None:
        os.environ.pop("UIAD_FEATURE_CACHE", None)
    else:
        os.environ["UIAD_FEATURE_CACHE"] = previous


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    """No test writes into the checkout's results/ folder."""
    monkeypatch.setenv("UIAD_RESULTS", str(tmp_path / "results"))


class ChapterRuns:
    """Executes each chapter at most once per session, in quick mode, into one output folder."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.results: dict[str, runner.ChapterResult] = {}

    def run(self, name: str) -> runner.ChapterResult:
        if name not in self.results:
            chapter = runner.resolve_chapters([name])[0]
            options = runner.RunOptions(
                out=self.out, quick=True, progress=False, cell_timeout=CHAPTER_CELL_TIMEOUT, device="cpu"
            )
            self.results[name] = runner.run_chapters([chapter], options)[0]
        return self.results[name]


@pytest.fixture(scope="session")
def chapter_runs(tmp_path_factory) -> ChapterRuns:
    return ChapterRuns(tmp_path_factory.mktemp("executed_book"))
