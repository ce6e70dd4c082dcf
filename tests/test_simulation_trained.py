"""SimulationTrainedHead: simulation of training anomalies, patch targets, feature cache, a head that
finds real (benchmark-generator) defects after seeing only simulated ones, per-defect metrics, the
transfer experiment and its registry rows, and clear errors on bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from uiad_lite import metrics, results
from uiad_lite.data import synthetic
from uiad_lite.data.sample import Sample
from uiad_lite.data.synthetic_images import make_rgb_sample
from uiad_lite.methods.base import NotFittedError, Prediction
from uiad_lite.methods.one_class.simulation_trained import (
    CachedPatchFeatures,
    SimulationTrainedHead,
    cached_features,
    patch_targets,
)
from uiad_lite.methods.one_class.transfer import per_defect_metrics, run_transfer
from uiad_lite.simulation import SIMULATION_NAMES, simulate_images, simulate_sample

SIZE = 128  # image side in pixels
FEATURE_SIZE = 96  # network input side: small enough for seconds on two CPU cores


@pytest.fixture(scope="module")
def features() -> CachedPatchFeatures:
    return cached_features(image_size=FEATURE_SIZE, device="cpu")


def _brick(defect: str, index: int, split: str) -> Sample:
    _, image, mask = make_rgb_sample("brick", defect, SIZE, synthetic.sample_rng(7, "brick", split, index))
    return Sample("brick", split, label=int(defect != "good"), defect=defect, image=image, mask=mask)


@pytest.fixture(scope="module")
def brick() -> tuple[list[Sample], list[Sample]]:
    """One synthetic RGB category at 128 px: 24 normal training images; 12 good + 16 defective tests."""
    train = [_brick("good", i, "train") for i in range(24)]
    defects = ["good"] * 12 + ["scratch", "crack", "hole", "contamination"] * 4
    test = [_brick(defect, i, "test") for i, defect in enumerate(defects)]
    return train, test


def _fast(simulation: str, features: CachedPatchFeatures, **options) -> SimulationTrainedHead:
    settings = {"hidden": 64, "epochs": 15, "seed": 0, **options}
    return SimulationTrainedHead(simulation, features=features, **settings)


def test_head_trained_on_nsa_finds_benchmark_defects(brick, features):
    train, test = brick
    detector = _fast("nsa", features).fit(train)
    prediction = detector.predict(test)
    assert prediction.maps.shape == (len(test), SIZE, SIZE)
    np.testing.assert_allclose(prediction.scores, prediction.maps.reshape(len(test), -1).max(axis=1))
    labels = np.array([sample.label for sample in test])
    masks = np.stack([sample.mask for sample in test])
    # it never saw a scratch, crack, hole or stain, only patches of other bricks blended in
    assert roc_auc_score(labels, prediction.scores) >= 0.75
    assert roc_auc_score(masks.ravel(), prediction.maps.ravel()) >= 0.85
    assert detector.loss_history[-1] < detector.loss_history[0]


def test_same_seed_same_numbers_other_seed_other_numbers(brick, features):
    train, test = brick[0][:8], brick[1][:6]
    first = _fast("draem", features, epochs=3).fit(train).predict(test)
    again = _fast("draem", features, epochs=3).fit(train).predict(test)
    other = _fast("draem", features, epochs=3, seed=1).fit(train).predict(test)
    np.testing.assert_array_equal(first.maps, again.maps)
    assert not np.array_equal(first.maps, other.maps)


@pytest.mark.parametrize("simulation", SIMULATION_NAMES)
def test_simulated_masks_mark_exactly_the_changed_pixels(brick, simulation):
    images = [sample.image for sample in brick[0][:3]]
    fakes, masks, names = simulate_images(images, simulation, np.random.default_rng(0), per_image=2)
    assert len(fakes) == len(masks) == len(names) == 6
    for index, (fake, mask) in enumerate(zip(fakes, masks, strict=True)):
        original = images[index // 2]
        np.testing.assert_array_equal(mask, (fake != original).any(axis=-1))
        assert mask.any()
    if simulation != "mix":
        assert set(names) == {simulation}
    repeat, _, _ = simulate_images(images, simulation, np.random.default_rng(0), per_image=2)
    assert all(np.array_equal(a, b) for a, b in zip(fakes, repeat, strict=True))


def test_simulate_sample_labels_the_copy(brick):
    sample = brick[0][0]
    copy = simulate_sample(sample, "nsa", np.random.default_rng(0), other_image=brick[0][1].image)
    assert copy.label == 1 and copy.defect == "simulated_nsa" and copy.meta["simulated"] == "nsa"
    np.testing.assert_array_equal(copy.mask, (copy.image != sample.image).any(axis=-1))
    assert sample.label == 0 and not sample.mask.any()  # the original is untouched
    with pytest.raises(ValueError, match="pass other_image"):
        simulate_sample(sample, "nsa", np.random.default_rng(0))


def test_mix_draws_several_generators(brick):
    images = [sample.image for sample in brick[0][:8]]
    _, _, names = simulate_images(images, "mix", np.random.default_rng(0), per_image=2)
    assert len(set(names)) >= 3 and set(names) <= set(SIMULATION_NAMES)


def test_patch_targets_follow_cell_coverage():
    mask = np.zeros((8, 8), bool)
    mask[0:4, 0:4] = True  # cell (0, 0): fully covered -> 1
    mask[0, 4] = True  # cell (0, 1): 1 of 16 pixels -> ignored at min_coverage 0.25
    mask[4:6, 4:8] = True  # cell (1, 1): 8 of 16 -> 1
    targets = patch_targets([mask], image_size=8, grid=(2, 2), min_coverage=0.25)[0].numpy()
    coverage = mask.reshape(2, 4, 2, 4).mean(axis=(1, 3))
    expected = np.where(coverage >= 0.25, 1.0, np.where(coverage == 0, 0.0, np.nan))
    np.testing.assert_array_equal(targets, expected)
    assert np.isnan(targets[0, 1]) and targets[1, 0] == 0 and targets[1, 1] == 1


def test_feature_cache_reads_each_image_once(features, brick):
    images = [sample.image for sample in brick[0][:3]]
    calls = []
    extractor = features.extractor
    original = extractor.extract_images

    def counting(batch, desc="features"):
        calls.append(len(batch))
        return original(batch, desc=desc)

    cache = CachedPatchFeatures(extractor)
    extractor.extract_images = counting
    try:
        first = cache(images)
        second = cache(images[::-1])
        cache([brick[0][5].image], remember=False)
    finally:
        extractor.extract_images = original
    assert calls == [3, 1] and len(cache) == 3
    torch.testing.assert_close(second, first.flip(0))
    side = extractor.image_size  # the cache area-averages to the network input before the backbone
    resized = [cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA) for image in images]
    torch.testing.assert_close(first, extractor.extract_images(resized))


def test_per_defect_metrics_against_sklearn():
    rng = np.random.default_rng(0)
    defects = ["good"] * 5 + ["dent"] * 3 + ["stain"] * 4
    samples, maps = [], rng.random((len(defects), 6, 6))
    for index, defect in enumerate(defects):
        mask = np.zeros((6, 6), bool)
        if defect != "good":
            mask[rng.integers(0, 4), rng.integers(0, 4)] = True
            maps[index][mask] += rng.random()
        samples.append(Sample("c", "test", label=int(defect != "good"), defect=defect, mask=mask))
    scores = maps.reshape(len(maps), -1).max(axis=1)
    table = per_defect_metrics(Prediction(scores, maps), samples).set_index("defect")
    assert list(table.index) == ["dent", "stain"]
    for defect, count in (("dent", 3), ("stain", 4)):
        chosen = [i for i, d in enumerate(defects) if d in ("good", defect)]
        labels = np.array([samples[i].label for i in chosen])
        assert table.loc[defect, "n_images"] == count
        assert table.loc[defect, "i_auroc"] == pytest.approx(roc_auc_score(labels, scores[chosen]))
        pixel_labels = np.stack([samples[i].mask for i in chosen]).ravel()
        expected = roc_auc_score(pixel_labels, maps[chosen].ravel())
        assert table.loc[defect, "p_auroc"] == pytest.approx(expected)


def test_run_transfer_records_one_row_per_simulation_and_category(tmp_path, monkeypatch):
    folder = synthetic.generate(tmp_path / "synthetic", size="tiny", seed=0, workers=1)
    monkeypatch.setenv("UIAD_RESULTS", str(tmp_path / "results"))
    cache = cached_features(image_size=64, device="cpu")
    def make(simulation: str) -> SimulationTrainedHead:
        return SimulationTrainedHead(simulation, features=cache, hidden=16, epochs=2)

    outcome = run_transfer(make, ["cutpaste", "nsa"], chapter="14_test", categories=["brick"],
                           root=str(folder),
                           progress=False)
    rows = results.load(chapter="14_test")
    assert sorted(rows["method"]) == ["SimulationTrained[cutpaste]", "SimulationTrained[nsa]"]
    defects = synthetic.DEFECTS["brick"]
    assert {f"i_auroc@{d}" for d in defects} | {f"p_auroc@{d}" for d in defects} <= set(rows.columns)
    assert len(outcome.per_defect) == 2 * len(defects)
    table = outcome.transfer_table("p_auroc")
    assert list(table.index) == ["cutpaste", "nsa"] and sorted(table.columns) == sorted(defects)
    # the recorded per-defect column is the per-defect evaluation of the stored prediction
    test = outcome.test["brick"]
    recomputed = per_defect_metrics(outcome.predictions["cutpaste", "brick"], test).set_index("defect")
    recorded = rows.set_index("method").loc["SimulationTrained[cutpaste]"]
    assert recorded["i_auroc@crack"] == pytest.approx(recomputed.loc["crack", "i_auroc"])
    overall = metrics.evaluate(outcome.predictions["nsa", "brick"], test)
    nsa_row = rows.set_index("method").loc["SimulationTrained[nsa]"]
    assert nsa_row["i_auroc"] == pytest.approx(overall["i_auroc"])
    with pytest.raises(ValueError, match="unknown metric"):
        outcome.transfer_table("accuracy")


def test_bad_input_is_refused_clearly(brick, features):
    train, test = brick
    with pytest.raises(ValueError, match="unknown simulation 'perlin'"):
        SimulationTrainedHead("perlin", features=features)
    with pytest.raises(ValueError, match="simulation_kwargs must be empty"):
        SimulationTrainedHead("mix", features=features, simulation_kwargs={"beta": (0.2, 0.8)})
    with pytest.raises(ValueError, match="min_coverage"):
        SimulationTrainedHead("draem", features=features, min_coverage=0.0)
    with pytest.raises(NotFittedError, match="before fit"):
        _fast("draem", features).predict(test[:2])
    with pytest.raises(NotFittedError, match="before fit"):
        _fast("draem", features).feature_logits(torch.zeros(3, features.extractor.out_channels))
    without_image = Sample("brick", "train", path="brick/train/good/000.png")
    with pytest.raises(ValueError, match="brick/train/good/000.png.*has no image"):
        _fast("draem", features).fit([train[0], without_image])
    with pytest.raises(ValueError, match="at least two images"):
        _fast("nsa", features).fit(train[:1])
    with pytest.raises(ValueError, match="at least one normal sample"):
        _fast("draem", features).fit([])
    fitted = _fast("cutpaste", features, epochs=1).fit(train[:4])
    with pytest.raises(ValueError, match="has no image"):
        fitted.predict([Sample("brick", "test", path="brick/test/hole/003.png")])
    with pytest.raises(ValueError, match="good \\(label 0\\) samples"):
        per_defect_metrics(Prediction(np.zeros(2)), [test[-1], test[-2]])
    with pytest.raises(ValueError, match="need anomaly maps"):
        per_defect_metrics(Prediction(np.zeros(len(test))), test)
    with pytest.raises(ValueError, match="unknown per-defect metric"):
        per_defect_metrics(Prediction(np.zeros(len(test))), test, keys=("accuracy",))
    with pytest.raises(ValueError, match="no categories"):
        run_transfer(lambda s: fitted, ["draem"], chapter="x", categories=[])
