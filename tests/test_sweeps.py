"""The coreset sweep reuses one feature bank: every row must equal a PatchCore fitted at that ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from uiad_lite.data import load
from uiad_lite.features import backbone
from uiad_lite.methods.memory_bank import CFA, PaDiM, PatchCore
from uiad_lite.metrics import aupro, image_auroc, pixel_auroc
from uiad_lite.sweeps import (
    SWEEP_COLUMNS,
    PatchBank,
    coreset_sweep,
    coverage_table,
    fitted_state_mb,
    order_bank,
    patchcore_sweep,
    score_with_bank,
    torch_threads,
)

SIZE = 64  # the synthetic "tiny" variant: 64 px images


@pytest.fixture(scope="module")
def tiny_brick():
    splits = load("synthetic", category="brick", size="tiny")
    return list(splits.train), list(splits.test)


@pytest.fixture(scope="module")
def lite0():
    return backbone("efficientnet_lite0", (2, 3), device="cpu")


def patchcore(lite0, ratio: float, projection_dim: int | None = 16) -> PatchCore:
    return PatchCore(lite0, image_size=SIZE, coreset_ratio=ratio, projection_dim=projection_dim,
                     device="cpu", seed=3, progress=False)  # fmt: skip


def labels_and_masks(test):
    return np.array([s.label for s in test]), np.stack([s.mask for s in test])


def test_prefix_of_one_greedy_order_is_the_coreset_patchcore_keeps(tiny_brick, lite0):
    train, _ = tiny_brick
    features = patchcore(lite0, 0.5).extractor(train)
    patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    bank = order_bank(patches, 0.5, seed=3, projection_dim=16)
    assert len(bank.order) == int(len(patches) * 0.5)
    for ratio in (0.02, 0.1, 0.25, 0.5):
        fitted = patchcore(lite0, ratio).fit(train)
        expected = patches[torch.from_numpy(bank.coreset(ratio))]
        torch.testing.assert_close(fitted.memory_bank_, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(bank.coreset(1.0), np.arange(len(patches)))


def test_scoring_against_a_bank_equals_patchcore_predict(tiny_brick, lite0):
    train, test = tiny_brick
    fitted = patchcore(lite0, 0.25).fit(train)
    expected = fitted.predict(test)
    _, masks = labels_and_masks(test)
    ours = score_with_bank(fitted.extractor(test), fitted.memory_bank_, SIZE, masks.shape[1:])
    np.testing.assert_array_equal(ours.scores, expected.scores)
    np.testing.assert_array_equal(ours.maps, expected.maps)


def test_sweep_rows_match_patchcore_fitted_at_each_ratio(tiny_brick, lite0):
    train, test = tiny_brick
    ratios = [0.5, 0.05, 1.0, 0.2]
    sweep = patchcore_sweep(patchcore(lite0, 0.1), train, test, ratios)
    table = sweep.table
    assert list(table.columns) == list(SWEEP_COLUMNS)
    assert table["ratio"].tolist() == sorted(ratios)
    total, dim = sweep.bank.patches.shape
    labels, masks = labels_and_masks(test)
    for row in table.itertuples():
        assert row.bank_size == (total if row.ratio == 1 else int(total * row.ratio))
        assert row.bank_mb == pytest.approx(row.bank_size * dim * 4 / 2**20)
        assert row.predict_ms_per_image >= row.search_ms_per_image > 0
        if row.ratio == 1:
            continue  # PatchCore(coreset_ratio=1) keeps every patch: checked through the bank size
        prediction = patchcore(lite0, row.ratio).fit(train).predict(test)
        assert row.i_auroc == pytest.approx(image_auroc(prediction.scores, labels), abs=1e-12)
        assert row.p_auroc == pytest.approx(pixel_auroc(prediction.maps, masks), abs=1e-12)
        assert row.aupro == pytest.approx(aupro(prediction.maps, masks), abs=1e-12)


def test_a_bank_holding_the_image_itself_scores_it_near_zero(tiny_brick, lite0):
    train, _ = tiny_brick
    features = patchcore(lite0, 0.1).extractor(train)
    patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    per_image = features.shape[2] * features.shape[3]
    others = patches[2 * per_image :]  # the bank without the first two images
    kwargs = dict(image_size=SIZE, output_size=(SIZE, SIZE), num_neighbors=1, sigma=0)
    without = score_with_bank(features[:2], others, **kwargs).scores
    with_itself = score_with_bank(features[:2], patches, **kwargs).scores
    # float32 cdist leaves a rounding residue of the self-distance, far below a real neighbour's distance
    assert np.all(with_itself < 0.02 * without)


def test_sweep_is_deterministic(tiny_brick, lite0):
    train, test = tiny_brick
    first = patchcore_sweep(patchcore(lite0, 0.1), train, test, [0.05, 0.3]).table
    second = patchcore_sweep(patchcore(lite0, 0.1), train, test, [0.05, 0.3]).table
    columns = ["ratio", "bank_size", "bank_mb", "i_auroc", "p_auroc", "aupro"]
    assert first[columns].equals(second[columns])


def test_bad_inputs_are_refused(tiny_brick, lite0):
    train, test = tiny_brick
    patches = torch.randn(50, 4)
    with pytest.raises(ValueError, match="coreset ratio"):
        order_bank(patches, 0.0)
    with pytest.raises(ValueError, match="coreset ratio"):
        PatchBank(patches, np.arange(5)).coreset(1.5)
    with pytest.raises(ValueError, match="larger max_ratio"):
        order_bank(patches, 0.1).coreset(0.5)
    with pytest.raises(ValueError, match=r"\(M, d\)"):
        order_bank(torch.randn(5, 2, 2), 0.5)
    features = patchcore(lite0, 0.1).extractor(test)
    bank = order_bank(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]), 0.5)
    with pytest.raises(ValueError, match="at least one"):
        coreset_sweep(bank, features, test, [], image_size=SIZE)
    with pytest.raises(ValueError, match="feature maps"):
        coreset_sweep(bank, features[:-1], test, [0.1], image_size=SIZE)
    good_only = [s for s in test if s.label == 0]
    good_features = features[[i for i, s in enumerate(test) if s.label == 0]]
    with pytest.raises(ValueError, match="both good"):
        coreset_sweep(bank, good_features, good_only, [0.1], image_size=SIZE)
    with pytest.raises(ValueError, match="to match the test features"):
        score_with_bank(features, torch.randn(10, 3), SIZE, (SIZE, SIZE))


def test_torch_threads_restores_the_setting_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive"):
        with torch_threads(0):
            pass


def test_fitted_state_counts_exactly_the_tensors_kept_for_prediction(tiny_brick, lite0):
    train, _ = tiny_brick
    fitted = patchcore(lite0, 0.25).fit(train)
    rows, dim = fitted.memory_bank_.shape
    assert fitted_state_mb(fitted) == pytest.approx(rows * dim * 4 / 2**20)
    padim = PaDiM(
        backbone("efficientnet_lite0", (1, 2, 3), device="cpu"),
        image_size=SIZE,
        reduced_dim=20,
        device="cpu",
        progress=False,
    ).fit(train)
    positions = padim.mean_.shape[0]
    assert fitted_state_mb(padim) == pytest.approx((positions * 20 + positions * 20 * 20) * 4 / 2**20)
    cfa = CFA(lite0, image_size=SIZE, epochs=1, device="cpu", progress=False).fit(train)
    channels = cfa.centroids_.shape[1]
    parameters = (channels + 2) * channels + channels  # 1x1 CoordConv weights and bias
    assert fitted_state_mb(cfa) == pytest.approx((cfa.centroids_.numel() + parameters) * 4 / 2**20)
    with pytest.raises(ValueError, match="fitted"):
        fitted_state_mb(patchcore(lite0, 0.25))


def test_coverage_table_matches_brute_force_and_greedy_reaches_the_outliers():
    rng = np.random.default_rng(0)
    blob = rng.standard_normal((2000, 3))
    outliers = 30.0 + rng.standard_normal((3, 3))  # a tiny far-away cluster that random sampling misses
    patches = torch.from_numpy(np.concatenate([blob, outliers]).astype(np.float32))
    bank = order_bank(patches, 0.01, seed=1, threads=None)
    table = coverage_table(bank, [0.01, 0.005], queries=10_000, seed=2)
    assert table["ratio"].tolist() == [0.005, 0.01] and table["size"].tolist() == [10, 20]
    points = patches.numpy().astype(np.float64)
    for row in table.itertuples():
        exact = cdist(points, points[bank.coreset(row.ratio)]).min(axis=1)
        assert row.greedy_max == pytest.approx(exact.max(), rel=1e-4)
        assert row.greedy_mean == pytest.approx(exact.mean(), rel=1e-4)
        assert row.greedy_max < 10 < row.random_max  # greedy covers the far cluster, random does not
    with pytest.raises(ValueError, match="queries"):
        coverage_table(bank, [0.01], queries=0)
