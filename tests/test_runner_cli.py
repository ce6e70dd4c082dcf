"""The papermill runner and the CLI, on a tiny throw-away project (two fast chapters, one failing)."""

from __future__ import annotations

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
    "# %% [markdown]\n# # A chapter that records\n\n"
    + PARAMETERS
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
    """Beside the interpreter, as a virtual environment has it (the venv need not be activated)."""
    script = Path(sys.executable).parent / "uiad-lite"
    assert script.exists(), "pip install -e . should install the uiad-lite console script"
    completed = subprocess.run([str(script), "chapters"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "00_introduction" in completed.stdout, completed.stderr


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


# ------------------------------------------------------------------ execution cache and the book's swap


def _statuses(out, capsys, *extra) -> dict[str, str]:
    cli.main(["run", "00", "02", "--out", str(out), "--no-progress", *extra])
    rows = capsys.readouterr().out.splitlines()[1:]
    return {row.split()[0]: row.split()[1] for row in rows if row.split() and row.split()[0][:2].isdigit()}


def test_a_chapter_is_cached_until_source_parameters_package_or_data_change(
    project, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out"
    assert _statuses(out, capsys) == {"00_good": "ok", "02_also_good": "ok"}
    first = (out / "executed" / "00_good.ipynb").read_bytes()
    assert _statuses(out, capsys) == {"00_good": "cached", "02_also_good": "cached"}
    assert (out / "executed" / "00_good.ipynb").read_bytes() == first
    metadata = nbformat.read(out / "executed" / "00_good.ipynb", as_version=4).metadata["uiad"]
    assert set(metadata["cache_parts"]) == {"chapter_source", "parameters", "package_source", "data_version"}
    # the chapter's source
    (project / "notebooks" / "02_also_good.py").write_text(GOOD + "\n# %%\nprint('edited')\n")
    assert _statuses(out, capsys) == {"00_good": "cached", "02_also_good": "ok"}
    # the parameters
    assert _statuses(out, capsys, "--seed", "3") == {"00_good": "ok", "02_also_good": "ok"}
    # --force
    assert _statuses(out, capsys, "--seed", "3", "--force") == {"00_good": "ok", "02_also_good": "ok"}
    # the package's source and the data version
    monkeypatch.setattr(runner, "package_digest", lambda: "another package")
    assert _statuses(out, capsys, "--seed", "3") == {"00_good": "ok", "02_also_good": "ok"}
    monkeypatch.setattr(runner, "data_version", lambda options: "synthetic-v999")
    assert _statuses(out, capsys, "--seed", "3") == {"00_good": "ok", "02_also_good": "ok"}
    assert _statuses(out, capsys, "--seed", "3") == {"00_good": "cached", "02_also_good": "cached"}


def test_a_corrupt_copy_or_a_changed_results_table_is_not_reused(project, tmp_path, capsys):
    (project / "notebooks" / "05_records.py").write_text(RECORDING)
    out = tmp_path / "out"

    def status():
        cli.main(["run", "05", "--out", str(out), "--no-progress", "--categories", "brick", "--seed", "1"])
        return capsys.readouterr().out.splitlines()[1].split()[1]

    assert status() == "ok"
    assert status() == "cached"
    table = out / "results" / "05_records.csv"
    table.write_text(table.read_text().replace("brick", "grass"))  # the table no longer matches the copy
    assert status() == "ok" and "brick" in table.read_text()
    table.unlink()
    assert status() == "ok" and table.exists()
    copy = out / "executed" / "05_records.ipynb"
    copy.write_bytes(copy.read_bytes()[:200])  # truncated
    assert status() == "ok"
    assert nbformat.read(copy, as_version=4).metadata["uiad"]["cache_key"]


def test_data_version_of_a_real_dataset_follows_its_files(tmp_path):
    root = tmp_path / "mvtec"
    (root / "bottle").mkdir(parents=True)
    (root / "bottle" / "a.png").write_bytes(b"1234")
    options = runner.RunOptions(dataset="mvtec_ad", data_root=str(root))
    before = runner.data_version(options)
    assert before == runner.data_version(options)
    (root / "bottle" / "b.png").write_bytes(b"5")
    assert runner.data_version(options) != before
    assert runner.data_version(runner.RunOptions()).startswith("synthetic-")


def test_device_cuda_without_cuda_is_refused_before_any_chapter(project, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        runner.run_chapters(
            runner.resolve_chapters(None), runner.RunOptions(out=tmp_path / "out", device="cuda")
        )
    assert not (tmp_path / "out" / "executed").exists() or not any((tmp_path / "out" / "executed").iterdir())


def test_an_interrupted_run_leaves_no_work_folders(project, tmp_path):
    import os
    import signal
    import time

    (project / "notebooks" / "03_slow.py").write_text(GOOD + "\n# %%\nimport time\ntime.sleep(120)\n")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "uiad_lite.cli", "run", "03", "--out", str(out), "--no-progress"],
        env={**os.environ, "UIAD_PROJECT": str(project)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 90
    while time.time() < deadline and not list((out / "work").glob("03_slow.*")):
        time.sleep(0.2)
    assert list((out / "work").glob("03_slow.*")), "the chapter never started"
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert list((out / "work").iterdir()) == []
    assert not (out / "executed" / "03_slow.ipynb").exists()


def test_book_is_rebuilt_only_when_its_inputs_change_and_a_failed_build_keeps_the_old_site(
    tmp_path, monkeypatch
):
    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    notebook = tmp_path / "00_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# X")]), notebook)
    calls = []

    def fake_build(command, **kwargs):  # what jupyter-book would do: write the site into the stage
        calls.append(command)
        site = Path(command[command.index("build") + 1]) / "_build" / "html"
        site.mkdir(parents=True)
        (site / "index.html").write_text(f"site {len(calls)}")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(runner.subprocess, "run", fake_build)
    out = tmp_path / "out"
    index = runner.build_book([notebook], out, root=root)
    assert index.read_text() == "site 1" and len(calls) == 1
    assert runner.build_book([notebook], out, root=root).read_text() == "site 1" and len(calls) == 1
    (root / "book" / "intro.md").write_text("# Intro, edited\n")
    assert runner.build_book([notebook], out, root=root).read_text() == "site 2"

    def failing_build(command, **kwargs):
        Path(command[command.index("build") + 1], "_build").mkdir()
        return subprocess.CompletedProcess(command, 1, "", "Sphinx error")

    monkeypatch.setattr(runner.subprocess, "run", failing_build)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Y")]), notebook)
    with pytest.raises(RuntimeError, match="jupyter-book build failed"):
        runner.build_book([notebook], out, root=root)
    assert index.read_text() == "site 2", "the previous site stays whole"
    assert sorted(p.name for p in out.iterdir()) == ["book"], "no staging folder is left behind"


def test_the_console_shows_the_summary_and_nothing_else(project, tmp_path):
    """No kernel log ('running over TCP without encryption'), no papermill warning for a comm that a
    library opens without a frontend (dash, imported by open3d, opens one)."""
    import os

    (project / "notebooks" / "04_comm.py").write_text(
        GOOD + "\n# %%\nfrom comm import create_comm\nchannel = create_comm(target_name='dash')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-m", "uiad_lite.cli", "run", "04", "--out", str(tmp_path / "out"), "--no-progress"],
        env={**os.environ, "UIAD_PROJECT": str(project)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = [line for line in (completed.stdout + completed.stderr).splitlines() if line.strip()]
    assert lines[0].split()[:3] == ["chapter", "status", "seconds"] and lines[1].startswith("04_comm  ok"), (
        lines
    )
    assert len(lines) == 2, f"unexpected console output: {lines}"
    assert (tmp_path / "out" / "logs" / "04_comm.kernel.log").exists(), "the kernel's own output goes here"
