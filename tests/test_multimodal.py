"""RGB+3D fusion (chapters 10-11): each fusion block on a small case whose answer is known, CFM's mapping
error, missing modalities and bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from uiad_lite import data, methods
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.multimodal.cfm import CFM
from uiad_lite.methods.multimodal.comparison import defect_kind, drop_modality
from uiad_lite.methods.multimodal.early import FusionEarly
from uiad_lite.methods.multimodal.fusion import ModalityScaler, ScoreNormaliser, combine
from uiad_lite.methods.multimodal.hybrid import FusionHybrid
from uiad_lite.methods.multimodal.late import FusionLate
from uiad_lite.methods.multimodal.middle import FusionMiddle
from uiad_lite.methods.multimodal.rgbd_features import PatchGrids

G, C_RGB, C_XYZ = 6, 8, 5
FAST = dict(device="cpu", progress=False, coreset_ratio=1.0)


def make_grids(count: int, seed: int, xyz_noise: float = 0.05, related: bool = False,
               xyz_spread: float = 3.0) -> PatchGrids:  # fmt: skip
    """Normal patches: RGB ~ a fixed pattern + N(0, 0.05²); 3D ~ 30 + a pattern (FPFH-like magnitude) +
    noise. ``related``: 3D is a fixed linear function of a random RGB feature (CFM's premise)."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99)
    rgb = base.normal(0, 1, (1, C_RGB, G, G)) + rng.normal(0, 0.05, (count, C_RGB, G, G))
    if related:
        rgb = rng.normal(0, 1, (count, C_RGB, G, G))
        mixing = base.normal(0, 1, (C_XYZ, C_RGB))
        xyz = np.einsum("dc,nchw->ndhw", mixing, rgb) + rng.normal(0, 0.02, (count, C_XYZ, G, G))
    else:
        xyz = (
            30 + base.normal(0, xyz_spread, (1, C_XYZ, G, G)) + rng.normal(0, xyz_noise, (count, C_XYZ, G, G))
        )
    ones = torch.ones(count, dtype=torch.bool)
    return PatchGrids(torch.tensor(rgb, dtype=torch.float32), torch.tensor(xyz, dtype=torch.float32),
                      torch.ones(count, G, G, dtype=torch.bool), ones, ones.clone(), (24, 24))  # fmt: skip


def with_defects(grids: PatchGrids, colour: float = 0.0, geometry: float = 0.0) -> PatchGrids:
    """Add a colour-only (RGB) and / or geometry-only (3D) change at patch (2, 3) of every sample."""
    rgb, xyz = grids.rgb.clone(), grids.xyz.clone()
    rgb[:, :, 2, 3] += colour * (-1.0) ** torch.arange(C_RGB)  # alternating signs: a change of shape, not
    xyz[:, :, 2, 3] += geometry * (-1.0) ** torch.arange(C_XYZ)  # an offset LayerNorm would remove
    return PatchGrids(rgb, xyz, grids.valid, grids.has_rgb, grids.has_xyz, grids.size)


@pytest.fixture(scope="module")
def toy():
    train = make_grids(12, seed=0)
    normal = make_grids(6, seed=1)
    return {"train": train, "normal": normal,
            "colour": with_defects(make_grids(6, seed=2), colour=0.6),
            "geometry": with_defects(make_grids(6, seed=3), geometry=0.6)}  # fmt: skip


def separated(detector, toy, kind: str) -> bool:
    """Every defective sample scores above every normal test sample."""
    normal = detector.predict_grids(toy["normal"]).scores
    defective = detector.predict_grids(toy[kind]).scores
    return bool(defective.min() > normal.max())


def test_late_fusion_finds_a_colour_only_defect_the_3d_branch_misses(toy):
    late = FusionLate(**FAST).fit_grids(toy["train"])
    xyz_only = FusionLate(branches=("xyz",), **FAST).fit_grids(toy["train"])
    rgb_only = FusionLate(branches=("rgb",), **FAST).fit_grids(toy["train"])
    assert separated(late, toy, "colour") and separated(rgb_only, toy, "colour")
    assert not separated(xyz_only, toy, "colour")
    assert separated(late, toy, "geometry") and separated(xyz_only, toy, "geometry")
    assert not separated(rgb_only, toy, "geometry")


def test_unnormalised_early_fusion_drowns_colour_and_normalised_does_not(toy):
    # FPFH-sized 3D values (spread 30, noise 1 per channel) dwarf a 0.6 RGB change in a raw concatenation;
    # per-modality normalisation puts the 3D noise at 1/67 of its modality's norm and the change shows
    noisy = {k: v for k, v in toy.items()}
    grids = {
        seed: make_grids(12 if seed == 0 else 6, seed, xyz_noise=1.0, xyz_spread=30.0) for seed in (0, 1, 2)
    }
    noisy["train"], noisy["normal"] = grids[0], grids[1]
    noisy["colour"] = with_defects(grids[2], colour=0.6)
    raw = FusionEarly(normalise="none", **FAST).fit_grids(noisy["train"])
    unit = FusionEarly(normalise="unit", **FAST).fit_grids(noisy["train"])
    assert not separated(raw, noisy, "colour")
    assert separated(unit, noisy, "colour")
    drowned = FusionEarly(normalise="unit", scale_3d=100.0, **FAST).fit_grids(noisy["train"])
    assert not separated(drowned, noisy, "colour")  # the chapter's knob: 3D scaled up drowns RGB again


def test_modality_scaler_gives_each_modality_unit_rms_norm():
    rng = np.random.default_rng(0)
    rgb, xyz = torch.tensor(rng.normal(0, 0.1, (500, 8))), torch.tensor(rng.normal(50, 20, (500, 3)))
    scaler = ModalityScaler("unit").fit(rgb.float(), xyz.float())
    fused = scaler.transform(rgb.float().T[None, :, :, None], xyz.float().T[None, :, :, None])[0, :, :, 0].T
    for part in (fused[:, :8], fused[:, 8:]):
        assert float(part.square().sum(dim=1).mean().sqrt()) == pytest.approx(1.0, rel=1e-4)


def test_score_normaliser_and_combine_on_known_numbers():
    normaliser = ScoreNormaliser("zscore").fit("rgb", np.array([1.0, 2.0, 3.0]))
    assert float(normaliser.normalise("rgb", torch.tensor(3.0))) == pytest.approx(np.sqrt(1.5))
    quantile = ScoreNormaliser("quantile").fit("xyz", np.arange(101.0))
    assert float(quantile.normalise("xyz", torch.tensor(99.0))) == pytest.approx(1.0)
    a, b = torch.tensor([1.0, 4.0]), torch.tensor([3.0, 0.5])
    assert combine([a, b], "sum").tolist() == [4.0, 4.5]
    assert combine([a, b], "max").tolist() == [3.0, 4.0]
    assert combine([a, b], "product").tolist() == [3.0, 2.0]
    # a product ranks the same whatever positive scale one modality has: no calibration needed
    assert torch.equal(combine([a * 7, b], "product").argsort(), combine([a, b], "product").argsort())
    with pytest.raises(ValueError, match="combine"):
        combine([a], "mean")


def test_hybrid_decision_layer_finds_both_kinds(toy):
    hybrid = FusionHybrid(holdout=0.25, **FAST).fit_grids(toy["train"])
    assert separated(hybrid, toy, "geometry") or separated(hybrid, toy, "colour")
    both = with_defects(make_grids(6, seed=4), colour=0.6, geometry=0.6)
    assert hybrid.predict_grids(both).scores.min() > hybrid.predict_grids(toy["normal"]).scores.max()
    assert hybrid.image_layer_.weights.shape == (2,)


def test_middle_fusion_learns_and_finds_defects(toy):
    middle = FusionMiddle(epochs=20, batch_size=64, head_dim=16, **FAST).fit_grids(toy["train"])
    assert middle.history_[-1] < middle.history_[0]  # the contrastive loss goes down
    assert separated(middle, toy, "geometry") and separated(middle, toy, "colour")


def test_cfm_mapping_error_low_on_normal_high_on_a_broken_correspondence():
    train, normal = make_grids(16, 0, related=True), make_grids(4, 1, related=True)
    cfm = CFM(epochs=150, batch_size=4, device="cpu", progress=False).fit_grids(train)
    assert cfm.history_[-1] < 0.2 * cfm.history_[0]
    broken = make_grids(4, 2, related=True)
    broken.xyz[:, :, 2, 3] = -broken.xyz[:, :, 2, 3]  # the 3D feature no longer matches the RGB one
    d2, d3 = cfm.mapping_errors(broken)
    product = d2 * d3
    n2, n3 = cfm.mapping_errors(normal)
    assert float(product[:, 2, 3].min()) > 5 * float((n2 * n3).quantile(0.99))
    assert cfm.predict_grids(broken).scores.min() > cfm.predict_grids(normal).scores.max()
    # missing 3D: imputed from RGB, scored by the RGB cycle error; the RGB here is normal, so it stays low
    imputed = cfm.mapping_errors(drop_modality(normal, "xyz"))[0]
    assert float(imputed.mean()) < float(d2[:, 2, 3].mean())


def test_missing_modality_fallback_and_errors(toy):
    late = FusionLate(missing="fallback", **FAST).fit_grids(toy["train"])
    rgb_only = late.predict_grids(drop_modality(toy["colour"], "xyz")).scores
    normal_rgb_only = late.predict_grids(drop_modality(toy["normal"], "xyz")).scores
    assert rgb_only.min() > normal_rgb_only.max()  # the RGB branch alone still finds the stain
    strict = FusionLate(**FAST).fit_grids(toy["train"])
    with pytest.raises(ValueError, match="lack xyz"):
        strict.predict_grids(drop_modality(toy["normal"], "xyz"))
    with pytest.raises(ValueError, match="missing"):
        CFM(missing="fallback")  # CFM imputes; only late fusion falls back
    with pytest.raises(NotFittedError):
        FusionLate(**FAST).predict_grids(toy["normal"])


def test_a_fusion_fitted_on_one_layout_refuses_another(toy):
    early = FusionEarly(**FAST).fit_grids(toy["train"])
    other = toy["normal"]
    other = PatchGrids(other.rgb[:, :4], other.xyz, other.valid, other.has_rgb, other.has_xyz, other.size)
    with pytest.raises(ValueError, match="fitted on features with layout.*rgb_channels.: 8"):
        early.predict_grids(other)


def test_defect_kinds():
    assert [defect_kind(d) for d in ("dent", "bump", "stain", "hole", "crack")] == [
        "geometry only", "geometry only", "colour only", "both", "unknown"]  # fmt: skip


# --- end to end on the tiny synthetic RGB-D data (real backbone, real FPFH) -------------------------------

TINY = dict(image_size=64, cloud_size=32, device="cpu", progress=False, seed=0)


@pytest.fixture(scope="module")
def cookie():
    return data.load("synthetic", category="cookie", size="tiny")


@pytest.fixture(scope="module")
def fitted_late(cookie):
    torch.set_num_threads(1)
    return methods.create("fusion_late", preset="quick", missing="fallback", **TINY).fit(list(cookie.train))


def test_registry_has_the_five_detectors():
    table = methods.catalogue().set_index("name")
    for name in ("fusion_early", "fusion_middle", "fusion_late", "fusion_hybrid", "cfm"):
        assert table.loc[name, "family"] == "multimodal" and table.loc[name, "needs"] == "image,xyz"
        assert table.loc[name, "chapter"] == "10_multimodal"
        for preset in ("quick", "paper"):
            assert methods.preset_settings(name, preset)["voxel_size"] == 0.05
        methods.create(name, preset="quick", device="cpu")  # the backbone is built on first use only
    assert methods.preset_settings("fusion_early", "quick")["cloud_size"] == methods.preset_settings(
        "btf_fpfh", "quick")["cloud_size"]  # fmt: skip


def test_end_to_end_maps_and_fallback(cookie, fitted_late):
    test = list(cookie.test)
    prediction = fitted_late.predict(test)
    assert prediction.maps.shape == (len(test), *test[0].mask.shape)
    without_xyz = [replace(s, xyz=None) for s in test]
    assert np.isfinite(fitted_late.predict(without_xyz).scores).all()


def test_missing_modality_raises_the_samples_error(cookie):
    early = methods.create("fusion_early", preset="quick", **TINY).fit(list(cookie.train)[:4])
    sample = replace(cookie.test[0], xyz=None)
    with pytest.raises(ValueError, match="has no xyz"):
        early.predict([sample])


def test_rgb_and_xyz_of_different_sizes_name_both_shapes(cookie, fitted_late):
    sample = cookie.test[0]
    small = replace(sample, xyz=np.ascontiguousarray(sample.xyz[::2, ::2]))
    with pytest.raises(ValueError, match=r"\(64, 64, 3\).*\(32, 32, 3\)"):
        fitted_late.predict([small])
