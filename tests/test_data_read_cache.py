"""The decoded-file cache of the readers: a file is decoded once, a changed file is read again, callers
get their own copies, the budget holds, and errors still name the file."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from uiad_lite.data import readers


@pytest.fixture()
def counted_opens(monkeypatch):
    monkeypatch.setattr(readers, "_decoded", readers.OrderedDict())
    monkeypatch.setattr(readers, "_decoded_bytes", 0)
    opened = []
    real_open = Image.open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(readers.Image, "open", counting_open)
    return opened


def _write(path, seed, size=(20, 30)):
    image = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return image


def test_a_file_is_decoded_once_and_each_caller_gets_its_own_copy(tmp_path, counted_opens):
    expected = _write(tmp_path / "a.png", 0)
    first = readers.read_rgb(tmp_path / "a.png")
    first[:] = 0  # the caller changes its copy
    second = readers.read_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(second, expected)
    assert len(counted_opens) == 1


def test_a_rewritten_file_is_read_again(tmp_path, counted_opens):
    _write(tmp_path / "a.png", 0)
    readers.read_rgb(tmp_path / "a.png")
    changed = _write(tmp_path / "a.png", 1, size=(21, 30))
    os.utime(tmp_path / "a.png", ns=(10**18, 10**18))
    np.testing.assert_array_equal(readers.read_rgb(tmp_path / "a.png"), changed)
    assert len(counted_opens) == 2


def test_the_budget_evicts_the_least_recently_used(tmp_path, counted_opens, monkeypatch):
    for index in range(3):
        _write(tmp_path / f"{index}.png", index)
    one = 20 * 30 * 3
    monkeypatch.setenv("UIAD_READ_CACHE_MB", str(2.5 * one / 2**20))
    for index in (0, 1, 0, 2):  # 0 is used again before 2 arrives: 1 is the one evicted
        readers.read_rgb(tmp_path / f"{index}.png")
    assert len(counted_opens) == 3
    readers.read_rgb(tmp_path / "0.png")
    readers.read_rgb(tmp_path / "1.png")
    assert counted_opens[3:] == [str(tmp_path / "1.png")]
    monkeypatch.setenv("UIAD_READ_CACHE_MB", "0")
    readers.read_rgb(tmp_path / "0.png")
    assert len(counted_opens) == 5, "a zero budget reads every time"
    monkeypatch.setenv("UIAD_READ_CACHE_MB", "much")
    with pytest.raises(ValueError, match="UIAD_READ_CACHE_MB"):
        readers.read_rgb(tmp_path / "0.png")


def test_errors_still_name_the_file(tmp_path, counted_opens):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        readers.read_rgb(tmp_path / "broken.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        readers.read_rgb(tmp_path / "missing.png")
