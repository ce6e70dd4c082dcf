"""One-class detectors (chapter 05): CutPaste, SimpleNet, GLASS.

Each detector, trained on normal stripes only, must score held-out stripes with a scratch above held-out
normal stripes and light up the scratch in its map; the pieces are checked against hand computations
(SimpleNet's truncated loss, the focal loss) and scipy (the Gaussian density); bad input gets clear errors.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from uiad_lite import methods
from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.one_class.cutpaste import CutPaste
from uiad_lite.methods.one_class.gde import GaussianDensity
from uiad_lite.methods.one_class.glass import GLASS, focal_loss
from uiad_lite.methods.one_class.simplenet import SimpleNet, truncated_l1_loss

SIZE = 64  # image side: tiny, so every detector fits in seconds on two CPU cores


def _stripes(index: int, scratch: bool, size: int = SIZE) -> Sample:
    """Horizontal stripes with a random phase and mild noise; a scratch is a dark diagonal line."""
    rng = np.random.default_rng(1000 + index)
    rows = np.arange(size)[:, None] + rng.uniform(0, 8)
    level = 150 + 60 * np.sign(np.sin(2 * np.pi * rows / 8)) + rng.normal(0, 6, (size, size))
    image = np.repeat(np.clip(level, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
    image[..., 2] = np.clip(image[..., 2].astype(int) - 40, 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    if scratch:
        start = rng.integers(8, 24, size=2)
        end = start + rng.integers(24, 32, size=2)
        cv2.line(image, tuple(int(v) for v in start), tuple(int(v) for v in end), (20, 20, 20), 3)
        cv2.line(mask.view(np.uint8), tuple(int(v) for v in start), tuple(int(v) for v in end), 1, 3)
    return Sample("stripes", "test" if index >= 100 else "train", label=int(scratch),
                  defect="scratch" if scratch else "good", image=image, mask=mask)  # fmt: skip


@pytest.fixture(scope="module")
def stripes() -> tuple[list[Sample], list[Sample]]:
    train = [_stripes(i, False) for i in range(16)]
    test = [_stripes(100 + i, False) for i in range(6)] + [_stripes(200 + i, True) for i in range(6)]
    return train, test


TINY = {
    "cutpaste": dict(map_layer=2, image_size=SIZE, head_dims=(32,), train_from=3, epochs=3, batch_size=8,
                     image_score="map_max"),
    "simplenet": dict(image_size=SIZE, pretrain_dim=64, target_dim=64, hidden=64, noise_std=1.0, epochs=20,
                      batch_size=2, adaptor_lr=1e-3, discriminator_lr=2e-3),
    "glass": dict(image_size=SIZE, pretrain_dim=64, target_dim=64, hidden=64, noise_std=1.0, epochs=20,
                  batch_size=2, adaptor_lr=1e-3, discriminator_lr=2e-3, local_copies=1, gas_steps=5),
}  # fmt: skip


@pytest.mark.parametrize("name", ["cutpaste", "simplenet", "glass"])
def test_detector_finds_a_scratch_on_stripes(stripes, name):
    train, test = stripes
    torch.set_num_threads(2)
    detector = methods.create(name, preset="quick", device="cpu", seed=0, progress=False, **TINY[name])
    prediction = detector.fit(train).predict(test)
    labels = np.array([sample.label for sample in test])
    assert prediction.maps.shape == (len(test), SIZE, SIZE)
    assert np.isfinite(prediction.scores).all() and np.isfinite(prediction.maps).all()
    assert roc_auc_score(labels, prediction.scores) >= 0.9, prediction.scores
    masks = np.stack([sample.mask for sample in test[6:]])
    pixel = roc_auc_score(masks.reshape(-1), prediction.maps[6:].reshape(-1))
    assert pixel >= 0.7, f"{name}: the map does not single out the scratch (pixel AUROC {pixel:.3f})"


def test_simplenet_is_deterministic_and_resizes_other_sizes(stripes):
    train, test = stripes
    settings = dict(TINY["simplenet"], epochs=2)
    first = SimpleNet(device="cpu", seed=3, progress=False, **settings).fit(train)
    second = SimpleNet(device="cpu", seed=3, progress=False, **settings).fit(train)
    np.testing.assert_allclose(first.predict(test).scores, second.predict(test).scores, rtol=1e-5)
    larger = [_stripes(300, False, size=80), _stripes(301, True, size=80)]
    assert first.predict(larger).maps.shape == (2, 80, 80)  # resized to image_size, maps at mask size
    with pytest.raises(ValueError, match="share one mask/image size"):
        first.predict([test[0], larger[0]])


def test_truncated_loss_matches_a_hand_computation():
    true = torch.tensor([0.7, 0.2, -0.1])
    fake = torch.tensor([-0.8, 0.0, 0.3])
    # normal terms max(0, 0.5 - D): 0, 0.3, 0.6; noisy terms max(0, 0.5 + D): 0, 0.5, 0.8
    expected = (0.0 + 0.3 + 0.6) / 3 + (0.0 + 0.5 + 0.8) / 3
    assert float(truncated_l1_loss(true, fake, margin=0.5)) == pytest.approx(expected)
    assert float(truncated_l1_loss(torch.tensor([0.9]), torch.tensor([-0.6]))) == 0.0  # beyond the margin
    with pytest.raises(ValueError, match="margin"):
        truncated_l1_loss(true, fake, margin=-1)


def test_focal_loss_reduces_to_cross_entropy_and_down_weights_easy_cells():
    logits = torch.tensor([2.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 0.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert float(focal_loss(logits, labels, gamma=0.0)) == pytest.approx(float(bce), rel=1e-6)
    p = torch.sigmoid(logits)
    pt = torch.where(labels == 1, p, 1 - p)
    assert float(focal_loss(logits, labels, 2.0)) == pytest.approx(
        float((-((1 - pt) ** 2) * pt.log()).mean())
    )


def test_gaussian_density_matches_scipy():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5)) + 3.0
    queries = rng.normal(size=(7, 5)) * 2 + 3.0
    plain = GaussianDensity(normalise=False, shrinkage=0.0).fit(data)
    reference = multivariate_normal(data.mean(axis=0), np.cov(data, rowvar=False, bias=True))
    np.testing.assert_allclose(plain.log_density(queries), reference.logpdf(queries), rtol=1e-9)
    # released: L2-normalised embeddings, Ledoit-Wolf covariance
    gde = GaussianDensity().fit(torch.from_numpy(data))
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    shrunk = multivariate_normal(unit.mean(axis=0), LedoitWolf().fit(unit).covariance_)
    np.testing.assert_allclose(gde.log_density(queries), shrunk.logpdf(unit_queries), rtol=1e-8)
    # the anomaly score orders samples exactly as the negative log-density
    assert (np.argsort(gde.mahalanobis(queries)) == np.argsort(-gde.log_density(queries))).all()
    with pytest.raises(ValueError, match="singular"):
        GaussianDensity(normalise=False, shrinkage=0.0).fit(data[:3])
    with pytest.raises(ValueError, match="NaN"):
        GaussianDensity().fit(np.full((4, 2), np.nan))


def test_glass_auto_ascent_recovers_the_released_values():
    glass = GLASS(device="cpu", image_size=SIZE, pretrain_dim=64, target_dim=64, hidden=8, noise_std=0.015)
    step, radius = glass.ascent_settings(1536)
    assert step == pytest.approx(0.001) and radius == pytest.approx((0.5, 1.0))
    step, radius = GLASS(device="cpu", image_size=SIZE, pretrain_dim=64, target_dim=64, hidden=8,
                         noise_std=0.03).ascent_settings(384)  # fmt: skip
    assert radius == pytest.approx((0.5, 1.0))  # twice the noise on a quarter of the dimensions


@pytest.mark.parametrize("cls", [CutPaste, SimpleNet, GLASS])
def test_predict_before_fit(stripes, cls):
    detector = cls(device="cpu", image_size=SIZE, progress=False)
    with pytest.raises(NotFittedError, match="before fit"):
        detector.predict(stripes[1])


def test_unknown_simulation_names_list_the_choices():
    with pytest.raises(ValueError, match=r"unknown simulation 'perlin'; choose one of \[.*'draem'") as error:
        GLASS(device="cpu", local_simulation="perlin")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"unknown simulation 'scar'; choose one of \[.*'cutpaste_scar'"):
        CutPaste(device="cpu", simulations=("cutpaste", "scar"))
    with pytest.raises(ValueError, match="image_score"):
        CutPaste(device="cpu", image_score="mean")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="noise_std"):
        SimpleNet(device="cpu", noise_std=0)
    with pytest.raises(ValueError, match="epochs"):
        SimpleNet(device="cpu", epochs=0)
    with pytest.raises(ValueError, match="train_from"):
        CutPaste(device="cpu", train_from=9)
    with pytest.raises(ValueError, match="at least two"):
        CutPaste(device="cpu").fit([_stripes(0, False)])


def test_registry_rows():
    catalogue = methods.catalogue()
    rows = catalogue[catalogue["chapter"] == "05_one_class"].set_index("name")
    assert list(rows.index) == ["cutpaste", "simplenet", "glass"]
    assert set(rows["subfamily"]) == {"one-class classification"}
    assert set(rows["family"]) == {"feature embedding"}
    assert rows.loc["simplenet", "survey_method"] == "SimpleNet"
    for name in rows.index:  # quick: the offline backbone; paper: the released one
        assert methods.preset_settings(name, "quick")["backbone"] == "efficientnet_lite0"
        assert methods.preset_settings(name, "paper")["backbone"] != "efficientnet_lite0"
