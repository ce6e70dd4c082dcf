"""The flow detectors (DifferNet, CFlow-AD, FastFlow): behaviour on tiny synthetic data and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uiad_lite import methods, metrics
from uiad_lite.data import load
from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.flows.cflow import CFlow, positional_encoding_2d
from uiad_lite.methods.flows.differnet import DifferNet, rotate
from uiad_lite.methods.flows.fastflow import FastFlow

SMALL = {
    "fastflow": dict(image_size=128, epochs=40, images_per_step=4, flow_steps=4),
    "cflow": dict(image_size=128, epochs=40, coupling_blocks=4, images_per_step=4, fibre_batch=64),
    "differnet": dict(
        image_size=128,
        epochs=60,
        hidden=64,
        coupling_blocks=4,
        rotations="right",
        train_transforms=4,
        test_transforms=4,
    ),
}
# pixel AUROC each method reaches on the tiny brick (measured 0.87 / 0.67; DifferNet's gradient maps do
# not localise there: 0.39, so only their shape and finiteness are checked)
PIXEL_FLOOR = {"fastflow": 0.8, "cflow": 0.6, "differnet": None}


@pytest.fixture(scope="module")
def tiny():
    return load("synthetic", category="brick", size="tiny")


@pytest.fixture(scope="module")
def fitted(tiny):
    torch.set_num_threads(1)
    return {
        name: methods.create(name, preset="quick", device="cpu", progress=False, **SMALL[name]).fit(
            tiny.train
        )
        for name in SMALL
    }


def test_registry_entries():
    catalogue = methods.catalogue().set_index("name")
    for name in ("differnet", "cflow", "fastflow"):
        row = catalogue.loc[name]
        assert (row.family, row.subfamily, row.chapter) == (
            "feature embedding",
            "distribution map",  # the survey's name for the flows' sub-family (Table 4)
            "06_normalizing_flows",
        )
        assert methods.preset_settings(name, "quick")["backbone"] == "efficientnet_lite0"
        assert methods.preset_settings(name, "paper")["backbone"] == "wide_resnet50_2.tv_in1k"


@pytest.mark.parametrize("name", list(SMALL))
def test_predict_before_fit(name, tiny):
    detector = methods.create(name, preset="quick", device="cpu", progress=False, **SMALL[name])
    with pytest.raises(NotFittedError, match="before fit"):
        detector.predict(tiny.test[:2])


@pytest.mark.parametrize("name", list(SMALL))
def test_scores_and_maps_separate_defects(name, fitted, tiny):
    prediction = fitted[name].predict(tiny.test)
    labels = np.array([s.label for s in tiny.test])
    masks = np.stack([s.mask for s in tiny.test])
    assert prediction.maps.shape == masks.shape and np.isfinite(prediction.maps).all()
    assert metrics.image_auroc(prediction.scores, labels) >= 0.85
    if PIXEL_FLOOR[name] is not None:
        assert metrics.pixel_auroc(prediction.maps, masks) >= PIXEL_FLOOR[name]
    history = fitted[name].loss_history_
    assert history[-1] < history[0]  # it learned


@pytest.mark.parametrize("name", list(SMALL))
def test_nan_in_a_layer_is_named(name, fitted, tiny):
    detector = fitted[name]
    flow = {
        "fastflow": lambda d: d.model_.flows[0],
        "cflow": lambda d: d.flows_[0],
        "differnet": lambda d: d.flow_,
    }[name](detector)
    parameter = next(flow.layers[2].parameters())  # an ActNorm (CFlow, FastFlow) or a coupling (DifferNet)
    saved = parameter.detach().clone()
    with torch.no_grad():
        parameter.fill_(float("nan"))
    try:
        with pytest.raises(
            FloatingPointError, match=r"flow: layer 2 \((ActNorm|AffineCoupling)\) produced NaN/inf"
        ):
            detector.predict(tiny.test[:3])
    finally:
        with torch.no_grad():
            parameter.copy_(saved)


@pytest.mark.parametrize("name", list(SMALL))
def test_other_image_size_is_resized(name, fitted, tiny):
    """Test images of another size than the training ones: resized to image_size, maps at mask size."""
    import cv2

    bigger = [
        Sample(
            image=cv2.resize(s.image, (80, 80)),
            mask=cv2.resize(s.mask, (80, 80), interpolation=0),
            label=s.label,
            category=s.category,
            split=s.split,
        )
        for s in tiny.test[:4]
    ]
    prediction = fitted[name].predict(bigger)
    assert prediction.maps.shape == (4, 80, 80) and np.isfinite(prediction.scores).all()


def test_cflow_fit_normaliser_does_not_depend_on_the_batch(fitted, tiny):
    detector = fitted["cflow"]
    detector.normalise = "fit"
    try:
        together = detector.predict(tiny.test[:4]).scores
        alone = np.array([detector.predict([s]).scores[0] for s in tiny.test[:4]])
    finally:
        detector.normalise = "batch"
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    assert not np.allclose(detector.predict(tiny.test[:4]).scores[:1], detector.predict(tiny.test[:1]).scores)


def test_positional_encoding_is_sinusoidal():
    encoding = positional_encoding_2d(8, height=5, width=7)
    columns, rows = torch.arange(7.0), torch.arange(5.0)
    torch.testing.assert_close(encoding[0], torch.sin(columns).expand(5, 7))
    torch.testing.assert_close(encoding[3], torch.cos(columns * 0.01).expand(5, 7))  # 10000^(-2/4)
    torch.testing.assert_close(encoding[4], torch.sin(rows)[:, None].expand(5, 7))
    torch.testing.assert_close(encoding[7], torch.cos(rows * 0.01)[:, None].expand(5, 7))
    with pytest.raises(ValueError, match="multiple of 4"):
        positional_encoding_2d(6, 2, 2)


def test_rotation():
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(rotate(images, 90), torch.rot90(images, 1, dims=(2, 3)))
    ramp = torch.linspace(0, 1, 16)
    images = (ramp[:, None] + ramp[None, :]).expand(2, 3, 16, 16) / 2  # smooth: interpolation is exact-ish
    back = rotate(rotate(images, 30.0), -30.0)
    centre = (slice(None), slice(None), slice(6, 10), slice(6, 10))
    assert (back[centre] - images[centre]).abs().max() < 0.02
    assert not math.isclose(float((rotate(images, 30.0) - images).abs().mean()), 0.0)


def test_bad_options():
    with pytest.raises(ValueError, match="normalise"):
        CFlow(normalise="test", device="cpu", progress=False)
    with pytest.raises(ValueError, match="rotations"):
        DifferNet(rotations="some", device="cpu", progress=False)
    with pytest.raises(ValueError, match="flow_steps"):
        FastFlow(flow_steps=0, device="cpu", progress=False)
