"""The papermill runner and the CLI, on a tiny throw-away project (two fast chapters, one failing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from uiad_lite import cli, runner

PARAMETERS = """# %% tags=["parameters"]
DATASET = "synthetic"
DATA_ROOT = None
CATEGORIES = None
QUICK = True
DEVICE = "auto"
SEED = 0
"""
GOOD = (
    "# %% [markdown]\n# # A good chapter\n\n"
    + PARAMETERS
    + "\n# %%\nimport os\nanswer = SEED + 41\n"
    + "print('answer', answer, 'static', os.environ.get('UIAD_STATIC'))\n"
)
BAD = (
    "# %% [markdown]\n# # A bad chapter\n\n" + PARAMETERS + "\n# %%\nx = 1\n\n# %%\n"
    "if SEED == 7:\n    raise RuntimeError('seed 7 is unlucky')\nprint('fine')\n"
)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "notebooks" / "00_good.py").write_text(GOOD)
    (root / "notebooks" / "01_bad.py").write_text(BAD)
    (root / "notebooks" / "02_also_good.py").write_text(GOOD)
    monkeypatch.setenv("UIAD_PROJECT", str(root))
    return root


def test_resolve_chapter_spellings(project):
    assert [c.name for c in runner.resolve_chapters(None)] == ["00_good", "01_bad", "02_also_good"]
    assert [c.name for c in runner.resolve_chapters(["01", "good", "02_also_good"])] == [
        "01_bad",
        "00_good",
        "02_also_good",
    ]
    with pytest.raises(runner.ChapterError, match="valid chapters: 00_good, 01_bad, 02_also_good"):
        runner.resolve_chapters(["99"])


def test_failing_chapter_is_reported_others_finish_good_copy_kept(project, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "--out", str(out), "--no-progress"]) == 0
    good_copy = (out / "executed" / "01_bad.ipynb").read_bytes()
    assert cli.main(["run", "--out", str(out), "--no-progress", "--seed", "7"]) == 1
    printed = capsys.readouterr().out
    assert "01_bad" in printed and "failed" in printed and "seed 7 is unlucky" in printed
    assert "RuntimeError" in printed and "cell " in printed
    # the half-executed notebook never replaces the good one; it is kept aside for inspection
    assert (out / "executed" / "01_bad.ipynb").read_bytes() == good_copy
    failed = nbformat.read(out / "failed" / "01_bad.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in failed.cells for o in c.get("outputs", []))
    # the chapter after the failing one ran with the new seed
    executed = nbformat.read(out / "executed" / "02_also_good.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "answer 48 static 1" in text  # the kernel knows it runs without a frontend (uiad_lite.widgets)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert (
        len(injected) == 1 and "hide-cell" in injected[0].metadata.tags and "SEED = 7" in injected[0].source
    )
    assert list((out / "executed").glob("*.tmp")) == []


def test_summary_shows_the_first_line_of_a_long_error_and_where_the_rest_is(tmp_path):
    kept = tmp_path / "failed" / "03_x.ipynb"
    error = "FileNotFoundError: mvtec_ad root folder not found: /nope\nExpected layout:\n  <root>/<category>"
    table = runner.summary_table([runner.ChapterResult("03_x", "failed", 1.0, kept, error, 4)])
    row = table.splitlines()[1]
    assert len(table.splitlines()) == 2  # the error's own line breaks do not break the table
    assert "cell 4: FileNotFoundError: mvtec_ad root folder not found: /nope" in row
    assert f"(whole error in {kept})" in row


RECORDING = (
    "# %% [markdown]\n# # A chapter that records\n\n" + PARAMETERS
    + "\n# %%\nfrom uiad_lite import results\nprint('others', sorted(results.load()['chapter'].unique()))\n"
    + "for category in CATEGORIES:\n"
    + "    results.record('05_records', 'M', DATASET, category, {'i_auroc': SEED / 10})\n"
    + "if SEED == 7:\n    raise RuntimeError('seed 7 is unlucky')\n"
)


def test_a_successful_rerun_replaces_the_chapters_table_a_failed_one_keeps_it(project, tmp_path, capsys):
    import pandas as pd

    (project / "notebooks" / "05_records.py").write_text(RECORDING)
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    other = pd.DataFrame({"chapter": ["03_x"], "method": ["P"], "dataset": ["synthetic"], "category": ["c"]})
    other.to_csv(out / "results" / "03_x.csv", index=False)
    table = out / "results" / "05_records.csv"

    def run(*extra):
        return cli.main(["run", "05", "--out", str(out), "--no-progress", *extra])

    assert run("--categories", "brick,grass", "--seed", "1") == 0
    assert sorted(pd.read_csv(table)["category"]) == ["brick", "grass"]
    assert run("--categories", "grass", "--seed", "2") == 0  # fewer categories: no stale brick row
    assert pd.read_csv(table)[["category", "i_auroc"]].values.tolist() == [["grass", 0.2]]
    assert run("--categories", "brick", "--seed", "7") == 1  # failed: the last good table stays
    assert pd.read_csv(table)[["category", "i_auroc"]].values.tolist() == [["grass", 0.2]]
    assert (out / "results" / "03_x.csv").exists()
    executed = nbformat.read(out / "executed" / "05_records.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "others ['03_x']" in printed  # other chapters' tables are readable during a run


def test_cell_timeout_is_a_failure(project, tmp_path):
    (project / "notebooks" / "03_slow.py").write_text(GOOD + "\n# %%\nimport time\ntime.sleep(30)\n")
    options = runner.RunOptions(out=tmp_path / "out", progress=False, cell_timeout=3)
    [result] = runner.run_chapters(runner.resolve_chapters(["03"]), options)
    assert result.status == "failed" and "Timeout" in result.error


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["run", "nope"], "unknown chapter 'nope'; valid chapters: 00_good, 01_bad, 02_also_good"),
        (["run", "--dataset", "imagenet"], "unknown dataset 'imagenet'; valid datasets: synthetic"),
        (["run", "--device", "tpu"], "unknown device 'tpu'; valid devices: auto, cpu, cuda"),
        (["book", "--device", "tpu"], "valid devices: auto, cpu, cuda"),
        (["run", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["run", "--categories", "brick,bottle"], "unknown category bottle for synthetic; valid categories"),
        (["run", "--dataset", "eyecandies"], "dataset 'eyecandies' has no loader yet; loadable: synthetic"),
    ],
)
def test_bad_choices_give_one_line_errors(project, arguments, expected):
    completed = subprocess.run(
        [sys.executable, "-m", "uiad_lite.cli", *arguments],
        capture_output=True,
        text=True,
        env={**__import__("os").environ},
    )
    assert completed.returncode == 2
    assert expected in completed.stderr
    assert "Traceback" not in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [[], ["run"], ["book"], ["data"], ["data", "download"], ["chapters"]])
def test_help_explains_options(command):
    completed = subprocess.run(
        [sys.executable, "-m", "uiad_lite.cli", *command, "--help"], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    assert "usage: uiad-lite" in completed.stdout
    if command in (["run"], ["book"]):
        for option in (
            "--dataset",
            "--data-root",
            "--categories",
            "--quick",
            "--full",
            "--device",
            "--seed",
            "--out",
        ):
            assert option in completed.stdout


def test_console_script_is_installed():
    assert shutil.which("uiad-lite"), "pip install -e . should install the uiad-lite console script"


def test_executed_notebooks_carry_no_widgets(project, tmp_path):
    """Progress bars and widgets would make the static book fetch JavaScript from a CDN."""
    (project / "notebooks" / "04_widgets.py").write_text(
        GOOD + "\n# %%\nfrom tqdm.auto import tqdm\nfor _ in tqdm(range(3), disable=False):\n    pass\n"
        "\n# %%\nimport ipywidgets\nipywidgets.IntSlider(3)\n"
    )
    options = runner.RunOptions(out=tmp_path / "out", progress=False)
    [result] = runner.run_chapters(runner.resolve_chapters(["04"]), options)
    assert result.status == "ok", result.error
    notebook = nbformat.read(result.output, as_version=4)
    assert "widgets" not in notebook.metadata
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert runner.WIDGET_MIME not in output.get("data", {})
            assert "it/s" not in str(output), "a frozen progress bar was left in the page"
    assert "answer 41" in str(notebook.cells), "ordinary outputs are kept"


def test_data_list_and_synthetic_commands(tmp_path, capsys):
    from uiad_lite.data import DATASETS

    assert cli.main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in DATASETS)
    assert cli.main(["data", "synthetic", "--size", "tiny", "--seed", "3", "--root", str(tmp_path)]) == 0
    folder = capsys.readouterr().out.strip().splitlines()[-1]
    assert folder.startswith(str(tmp_path)) and (Path(folder) / "brick" / "train" / "good").is_dir()
