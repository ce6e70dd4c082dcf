from __future__ import annotations

import numpy as np
import pytest

from uiad_lite import metrics, results
from uiad_lite.data.sample import Sample
from uiad_lite.experiment import run_detector
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.baselines.pixel_gaussian import PixelGaussian


def _images(rng, n, defect=False):
    samples = []
    for i in range(n):
        image = np.clip(120 + rng.normal(0, 6, (32, 32, 3)), 0, 255).astype(np.uint8)
        mask = np.zeros((32, 32), bool)
        if defect:
            row, col = rng.integers(4, 24, 2)
            image[row : row + 4, col : col + 4] = 250
            mask[row : row + 4, col : col + 4] = True
        samples.append(
            Sample(
                "toy",
                "test",
                label=int(defect),
                defect="spot" if defect else "good",
                path=f"toy/{i}",
                image=image,
                mask=mask,
            )
        )
    return samples


def test_pixel_gaussian_finds_bright_spots():
    rng = np.random.default_rng(0)
    train = _images(rng, 30)
    test = _images(rng, 10) + _images(rng, 10, defect=True)
    prediction = PixelGaussian(smooth=1.0).fit(train).predict(test)
    labels = np.array([s.label for s in test])
    assert metrics.image_auroc(prediction.scores, labels) == 1.0
    for sample, anomaly_map in zip(test[10:], prediction.maps[10:], strict=True):
        peak = np.unravel_index(anomaly_map.argmax(), anomaly_map.shape)
        assert sample.mask[peak]


def test_pixel_gaussian_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(NotFittedError):
        PixelGaussian().predict(_images(rng, 1))
    detector = PixelGaussian().fit(_images(rng, 3))
    other = Sample("toy", "test", image=np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="has shape"):
        detector.predict([other])
    with pytest.raises(ValueError, match="no image"):
        detector.predict([Sample("toy", "test", path="toy/none")])


def test_run_detector_records_every_category(tmp_path, monkeypatch):
    monkeypatch.setenv("UIAD_RESULTS", str(tmp_path))
    experiment = run_detector(
        PixelGaussian,
        chapter="00_introduction",
        method="PixelGaussian",
        categories=["brick", "plate"],
        progress=False,
    )
    recorded = results.load(tmp_path)
    assert sorted(recorded["category"]) == ["brick", "plate"]
    assert list(experiment.table.index) == ["brick", "plate", "mean"]
    assert experiment.table.loc["mean", "i_auroc"] == pytest.approx(recorded["i_auroc"].mean())
    run = experiment.runs["plate"]
    labels = np.array([s.label for s in run.dataset.test])
    assert run.scores["i_auroc"] == pytest.approx(metrics.image_auroc(run.prediction.scores, labels))


def test_run_detector_passes_load_options_to_the_loader(tmp_path, monkeypatch):
    monkeypatch.setenv("UIAD_RESULTS", str(tmp_path))
    experiment = run_detector(
        PixelGaussian,
        chapter="00_introduction",
        method="PixelGaussian",
        categories=["brick"],
        progress=False,
        load_options={"image_size": 64, "center_crop": 48},
    )
    run = experiment.runs["brick"]
    assert run.dataset.meta["center_crop"] == (48, 48)
    assert run.prediction.maps.shape[1:] == (48, 48)
    assert run.dataset.test[0].mask.shape == (48, 48)
