"""PaDiM, PatchCore and CFA: their building blocks against independent computations, then end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist as scipy_cdist
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis

from uiad_lite.data.sample import Sample
from uiad_lite.features import aggregate_neighbourhood
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.memory_bank import (
    CFA,
    PaDiM,
    PatchCore,
    approximate_greedy_coreset,
    coreset_indices,
    coupled_hypersphere_loss,
    fit_gaussians,
    greedy_coreset,
    johnson_lindenstrauss_dim,
    mahalanobis_distances,
    nearest_neighbours,
    reweighted_image_scores,
    score_against_bank,
)
from uiad_lite.methods.memory_bank.coreset import linear_projection_matrix
from uiad_lite.methods.memory_bank.patchcore import adaptive_pool_embedding
from uiad_lite.metrics import aupro, image_auroc

# ---------------------------------------------------------------- PatchCore coreset


def naive_greedy_coreset(points: np.ndarray, count: int, start: int) -> list[int]:
    """Textbook k-center greedy with the full O(n^2) distance matrix, in float64."""
    distances = scipy_cdist(points, points)
    picks = [start]
    while len(picks) < count:
        to_selected = distances[:, picks].min(axis=1)
        to_selected[picks] = -1.0
        picks.append(int(np.argmax(to_selected)))
    return picks


def covering_radius(points: np.ndarray, picks: np.ndarray) -> float:
    """max over points of the distance to the nearest selected point (PatchCore Eq. 5 objective)."""
    return float(scipy_cdist(points, points[picks]).min(axis=1).max())


def test_greedy_coreset_matches_naive_reference() -> None:
    points = np.random.default_rng(0).standard_normal((300, 6)).astype(np.float32)
    for start in (0, 123):
        ours = greedy_coreset(torch.from_numpy(points), 40, start_index=start)
        assert list(ours) == naive_greedy_coreset(points.astype(np.float64), 40, start)


def test_greedy_coreset_can_take_every_point_once() -> None:
    points = torch.from_numpy(np.random.default_rng(1).standard_normal((25, 3)).astype(np.float32))
    picks = greedy_coreset(points, 25, start_index=4)
    assert sorted(picks) == list(range(25))


def test_covering_radius_shrinks_as_ratio_grows() -> None:
    points = np.random.default_rng(2).standard_normal((600, 8)).astype(np.float32)
    ratios = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0]
    radii = [covering_radius(points, coreset_indices(torch.from_numpy(points), r, seed=5)) for r in ratios]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(radii[:-1], radii[1:], strict=True))
    assert radii[0] > 1.5 * radii[3] > 0
    assert radii[-1] == 0.0
    # greedy is a 2-approximation of the optimal radius; a random subset of the same size is worse
    random_pick = np.random.default_rng(0).choice(600, size=60, replace=False)
    assert radii[2] < covering_radius(points, random_pick)


def test_coreset_indices_sizes_seed_projection_and_bad_ratio() -> None:
    features = torch.from_numpy(np.random.default_rng(3).standard_normal((500, 64)).astype(np.float32))
    picks = coreset_indices(features, 0.1, seed=7, projection_dim=16)
    assert len(picks) == 50 and len(set(picks.tolist())) == 50
    assert np.array_equal(picks, coreset_indices(features, 0.1, seed=7, projection_dim=16))
    assert not np.array_equal(picks, coreset_indices(features, 0.1, seed=8, projection_dim=16))
    assert len(coreset_indices(features, 0.001, seed=0)) == 1
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="coreset ratio"):
            coreset_indices(features, bad)


def test_johnson_lindenstrauss_dim_matches_the_bound() -> None:
    # 4 ln(n) / (eps^2/2 - eps^3/3) for n = 10000, eps = 0.9
    expected = math.ceil(4 * math.log(10000) / (0.81 / 2 - 0.729 / 3))
    assert johnson_lindenstrauss_dim(10000, 0.9) == expected == 228
    with pytest.raises(ValueError):
        johnson_lindenstrauss_dim(100, 1.5)


# ---------------------------------------------------------------- nearest neighbours


def test_chunked_nearest_neighbours_equal_unchunked_and_brute_force() -> None:
    rng = np.random.default_rng(4)
    queries = torch.from_numpy(rng.standard_normal((97, 12)).astype(np.float32))
    bank = torch.from_numpy(rng.standard_normal((203, 12)).astype(np.float32))
    full_d, full_i = nearest_neighbours(queries, bank, k=4, max_block=10**9)
    for block in (1, 50, 203, 1000):
        d, i = nearest_neighbours(queries, bank, k=4, max_block=block)
        assert torch.equal(i, full_i)
        torch.testing.assert_close(d, full_d, atol=1e-5, rtol=1e-5)
    brute = scipy_cdist(queries.double().numpy(), bank.double().numpy())
    order = np.argsort(brute, axis=1)[:, :4]
    assert np.array_equal(full_i.numpy(), order)
    np.testing.assert_allclose(full_d.numpy(), np.take_along_axis(brute, order, axis=1), atol=1e-4)
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(queries, bank, k=204)


# ---------------------------------------------------------------- PatchCore Eq. 7


def test_reweighted_image_score_matches_hand_computation() -> None:
    bank = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [4.0, 0.0], [10.0, 10.0]])
    # one image, three patches; the farthest from the bank is (-3, 0), nearest bank point (0, 0)
    patches = torch.tensor([[[0.5, 0.1], [-3.0, 0.0], [1.0, 0.2]]])
    distances, neighbours = nearest_neighbours(patches[0], bank, k=1)
    score = reweighted_image_scores(patches, distances.T, neighbours.T, bank, num_neighbors=3)
    # by hand: m_test* = (-3, 0), m* = (0, 0), s* = 3; N_3(m*) = {(0,0), (1,0), (0,2)}
    # distances from m_test*: 3, 4, sqrt(13)
    s_star = 3.0
    weight = 1 - math.exp(3.0) / (math.exp(3.0) + math.exp(4.0) + math.exp(math.sqrt(13.0)))
    assert float(score[0]) == pytest.approx(weight * s_star, rel=1e-5)
    # b = 1 reduces to the plain maximum s*
    plain = reweighted_image_scores(patches, distances.T, neighbours.T, bank, num_neighbors=1)
    assert float(plain[0]) == pytest.approx(3.0)


# ---------------------------------------------------------------- PatchCore as released


def naive_adaptive_pool(row: np.ndarray, size: int) -> np.ndarray:
    """adaptive_avg_pool1d by its definition: output j averages input[floor(jL/O) : ceil((j+1)L/O)]."""
    length = len(row)
    return np.array([row[(j * length) // size : -((-(j + 1) * length) // size)].mean() for j in range(size)])


def test_adaptive_pool_embedding_against_a_loop_over_zero_padded_patches() -> None:
    rng = np.random.default_rng(0)
    stages = [
        rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
        rng.standard_normal((2, 2, 4, 5)).astype(np.float32),
    ]
    ours = adaptive_pool_embedding(
        [torch.from_numpy(s) for s in stages], 3, pretrain_dim=7, target_dim=5
    ).numpy()
    assert ours.shape == (2, 5, 4, 5)
    for b, i, j in [(0, 0, 0), (1, 2, 3), (1, 3, 4), (0, 1, 0)]:
        per_stage = []
        for stage in stages:
            padded = np.pad(stage[b], ((0, 0), (1, 1), (1, 1)))  # zeros outside the grid
            patch = padded[:, i : i + 3, j : j + 3].reshape(-1)  # channel-major, then rows, then columns
            per_stage.append(naive_adaptive_pool(patch, 7))
        expected = naive_adaptive_pool(np.concatenate(per_stage), 5)
        np.testing.assert_allclose(ours[b, :, i, j], expected, rtol=1e-5, atol=1e-6)


def test_adaptive_pool_with_one_value_per_channel_is_the_padded_3x3_mean() -> None:
    """C·9 values pooled to C: each output is one channel's 3×3 mean, the padding's zeros counted."""
    stage = torch.randn(1, 4, 5, 6, generator=torch.Generator().manual_seed(1)) + 3.0
    ours = adaptive_pool_embedding([stage], 3, pretrain_dim=4, target_dim=4)
    torch.testing.assert_close(ours, aggregate_neighbourhood(stage, 3, count_padding=True))
    corner = stage[0, :, :2, :2].sum(dim=(1, 2)) / 9
    torch.testing.assert_close(ours[0, :, 0, 0], corner)


def naive_approximate_greedy(points: np.ndarray, count: int, anchors: np.ndarray) -> list[int]:
    distances = scipy_cdist(points, points)
    nearest = distances[:, anchors].mean(axis=1)
    picks = []
    for _ in range(count):
        picks.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, distances[:, picks[-1]])
    return picks


def test_approximate_greedy_coreset_matches_the_released_rule() -> None:
    points = np.random.default_rng(6).standard_normal((250, 5)).astype(np.float32)
    anchors = np.random.default_rng(11).choice(250, size=10, replace=False)  # what seed 11 draws
    ours = approximate_greedy_coreset(torch.from_numpy(points), 30, starting_points=10, seed=11)
    assert list(ours) == naive_approximate_greedy(points.astype(np.float64), 30, anchors)
    # its first pick is the point farthest on average from the anchors, not an anchor or a random one
    assert ours[0] == int(np.argmax(scipy_cdist(points, points[anchors]).mean(axis=1)))


def test_released_coreset_projection_and_sampler_choice() -> None:
    matrix = linear_projection_matrix(400, 128, seed=0)
    bound = 1 / math.sqrt(400)  # torch.nn.Linear's default initialisation range
    assert matrix.shape == (400, 128) and np.abs(matrix).max() <= bound
    assert matrix.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # uniform, not Gaussian
    features = torch.from_numpy(np.random.default_rng(7).standard_normal((400, 32)).astype(np.float32))
    approximate = coreset_indices(features, 0.1, seed=2)
    greedy = coreset_indices(features, 0.1, seed=2, sampler="greedy")
    assert len(approximate) == len(greedy) == 40 and len(set(approximate.tolist())) == 40
    assert not np.array_equal(approximate, greedy)
    with pytest.raises(
        ValueError, match=r"unknown coreset sampler 'fast'; choose one of \['approximate', 'greedy'\]"
    ):
        coreset_indices(features, 0.1, sampler="fast")


def test_score_against_bank_uses_squared_distances_and_the_maximum_by_default() -> None:
    rng = np.random.default_rng(8)
    features = torch.from_numpy(rng.standard_normal((3, 6, 4, 4)).astype(np.float32))
    bank = torch.from_numpy(rng.standard_normal((20, 6)).astype(np.float32))
    patches = features.permute(0, 2, 3, 1).reshape(3, 16, 6).numpy().astype(np.float64)
    nearest = np.stack([scipy_cdist(p, bank.numpy().astype(np.float64)).min(axis=1) for p in patches])
    released = score_against_bank(features, bank, image_size=16, output_size=(16, 16), sigma=0.0)
    np.testing.assert_allclose(released.scores, (nearest**2).max(axis=1), rtol=1e-4)  # FAISS IndexFlatL2
    euclidean = score_against_bank(features, bank, 16, (16, 16), distance="euclidean", sigma=0.0)
    np.testing.assert_allclose(euclidean.scores, nearest.max(axis=1), rtol=1e-4)
    # maps carry the same patch scores (here one patch = 4×4 pixels, bilinear upsampling, no smoothing)
    np.testing.assert_allclose(released.maps[:, 1::4, 1::4].max(axis=(1, 2)), released.scores, rtol=0.2)
    assert not np.allclose(released.maps, euclidean.maps)
    reweighted = score_against_bank(features, bank, 16, (16, 16), image_score="reweighted", sigma=0.0)
    assert np.all(reweighted.scores < euclidean.scores) and np.all(reweighted.scores > 0)
    with pytest.raises(ValueError, match=r"unknown distance 'l1'; choose one of \['squared', 'euclidean'\]"):
        score_against_bank(features, bank, 16, (16, 16), distance="l1")


# ---------------------------------------------------------------- PaDiM


def test_padim_gaussian_and_mahalanobis_against_numpy_and_scipy() -> None:
    rng = np.random.default_rng(5)
    train = rng.standard_normal((30, 4, 5)) @ rng.standard_normal((5, 5))  # (N, P, d), correlated
    test = rng.standard_normal((3, 4, 5))
    mean, covariance = fit_gaussians(torch.from_numpy(train).float(), epsilon=0.01)
    inverse = torch.linalg.inv(covariance.double()).float()
    ours = mahalanobis_distances(torch.from_numpy(test).float(), mean, inverse)
    for position in range(4):
        reference_cov = np.cov(train[:, position], rowvar=False) + 0.01 * np.eye(5)
        np.testing.assert_allclose(covariance[position].numpy(), reference_cov, rtol=1e-4, atol=1e-5)
        inverse_ref = np.linalg.inv(reference_cov)
        mu = train[:, position].mean(axis=0)
        for image in range(3):
            expected = scipy_mahalanobis(test[image, position], mu, inverse_ref)
            assert float(ours[image, position]) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        fit_gaussians(torch.zeros(1, 4, 5))


# ---------------------------------------------------------------- CFA loss


def test_coupled_hypersphere_loss_by_hand() -> None:
    squared = torch.tensor([[0.5, 0.1, 3.0, 0.2, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    loss = coupled_hypersphere_loss(squared, num_nearest=2, num_hard_negatives=2, radius=0.5, margin=0.1)
    # row 0 sorted: 0.1, 0.2 | 0.5, 2.0 ; row 1: 1, 1 | 1, 1 ; r^2 = 0.25
    attraction = (0 + 0 + 0.75 + 0.75) / 4
    repulsion = (max(0, 0.25 - 0.5 - 0.1) + 0 + 0 + 0) / 4
    assert float(loss) == pytest.approx(attraction + repulsion)
    loss_small_r = coupled_hypersphere_loss(squared, 1, 1, radius=1.0, margin=0.1)
    # r^2 = 1: attraction 0 (0.1 and 1.0 are <= 1), repulsion max(0, 1 - 0.2 - 0.1) and max(0, 1 - 1 - 0.1)
    assert float(loss_small_r) == pytest.approx((0.7 + 0.0) / 2)
    # the released code divides by nu = 1e-3
    assert float(coupled_hypersphere_loss(squared, 1, 1, 1.0, 0.1, nu=1e-3)) == pytest.approx(700.0 / 2)


def test_learnable_radius_gets_a_gradient_that_grows_it() -> None:
    """As released, r is a parameter: at r = 1e-5 every attraction hinge is active, so dL/dr < 0 and a
    gradient step enlarges r (repulsion can only start once r^2 > alpha)."""
    squared = torch.rand(40, 9, generator=torch.Generator().manual_seed(0)) + 0.5
    radius = torch.tensor(1e-5, requires_grad=True)
    coupled_hypersphere_loss(squared, 3, 3, radius, margin=0.1, nu=1e-3).backward()
    # L_att = mean(d - r^2) / nu over the K nearest, so dL/dr = -2 r / nu exactly
    assert float(radius.grad) == pytest.approx(-2 * 1e-5 / 1e-3, rel=1e-4)


# ---------------------------------------------------------------- detectors end to end

TINY_SIZE = 64  # the synthetic "tiny" variant: 64 px, 8 train, 12 test images per category


@pytest.fixture(scope="module")
def tiny_brick():
    from uiad_lite.data import load

    splits = load("synthetic", category="brick", size="tiny")
    return list(splits.train), list(splits.test)


@pytest.fixture(scope="module")
def lite0_backbones():
    from uiad_lite.features import backbone

    return {layers: backbone("efficientnet_lite0", layers, device="cpu") for layers in [(1, 2, 3), (2, 3)]}


def make_detector(kind: str, backbones, **kwargs):
    common = dict(image_size=TINY_SIZE, progress=False, seed=0)
    if kind == "padim":
        return PaDiM(backbone=backbones[(1, 2, 3)], reduced_dim=40, **common, **kwargs)
    if kind == "patchcore":
        return PatchCore(backbone=backbones[(2, 3)], coreset_ratio=0.25, **common, **kwargs)
    return CFA(backbone=backbones[(2, 3)], epochs=3, **common, **kwargs)


@pytest.mark.parametrize("kind", ["padim", "patchcore", "cfa"])
def test_detector_protocol_shapes_and_determinism(kind, tiny_brick, lite0_backbones) -> None:
    train, test = tiny_brick
    detector = make_detector(kind, lite0_backbones)
    with pytest.raises(NotFittedError):
        detector.predict(test)
    assert detector.fit(train) is detector
    first = detector.predict(test)
    assert first.scores.shape == (len(test),) and np.all(np.isfinite(first.scores))
    assert first.maps.shape == (len(test), *test[0].mask.shape) and first.maps.dtype == np.float32
    assert np.all(np.isfinite(first.maps))
    part = detector.predict(test[3:7])  # each image is scored on its own, whatever else is in the call
    np.testing.assert_allclose(part.scores, first.scores[3:7], rtol=1e-5)
    np.testing.assert_allclose(
        part.maps, first.maps[3:7], rtol=1e-4, atol=1e-5 * float(np.abs(first.maps).max())
    )
    again = make_detector(kind, lite0_backbones).fit(train).predict(test)  # same seed, same numbers
    np.testing.assert_allclose(again.scores, first.scores, rtol=1e-5)


@pytest.mark.parametrize("kind", ["padim", "patchcore", "cfa"])
def test_samples_without_image_are_rejected(kind, tiny_brick, lite0_backbones) -> None:
    train, test = tiny_brick
    faceless = Sample(category="brick", split="test", path="brick/test/missing.png")
    detector = make_detector(kind, lite0_backbones)
    with pytest.raises(ValueError, match="missing.png.*has no image"):
        detector.fit([*train[:4], faceless])
    detector.fit(train)
    with pytest.raises(ValueError, match="has no image"):
        detector.predict([test[0], faceless])


def test_other_image_size_at_predict_time_is_resized_consistently(tiny_brick, lite0_backbones) -> None:
    """Test images twice as large as the training ones: resized to image_size, maps at their size."""
    train, test = tiny_brick
    detector = make_detector("patchcore", lite0_backbones).fit(train)
    reference = detector.predict(test)

    def twice(array: np.ndarray) -> np.ndarray:
        return array.repeat(2, axis=0).repeat(2, axis=1)

    enlarged = [
        Sample(s.category, s.split, s.label, s.defect, s.path, image=twice(s.image), mask=twice(s.mask))
        for s in test
    ]
    bigger = detector.predict(enlarged)
    assert bigger.maps.shape == (len(test), 2 * TINY_SIZE, 2 * TINY_SIZE)
    assert np.corrcoef(bigger.scores, reference.scores)[0, 1] > 0.9
    with pytest.raises(ValueError, match="share one mask/image size"):
        detector.predict([test[0], enlarged[1]])


def test_invalid_hyper_parameters(lite0_backbones) -> None:
    for ratio in (0.0, 1.01, -1.0):
        with pytest.raises(ValueError, match="coreset_ratio"):
            PatchCore(backbone=lite0_backbones[(2, 3)], coreset_ratio=ratio)
    with pytest.raises(ValueError, match="epsilon"):
        PaDiM(backbone=lite0_backbones[(1, 2, 3)], epsilon=0.0)
    with pytest.raises(ValueError, match="disagrees"):
        PatchCore(backbone=lite0_backbones[(2, 3)], layers=(1, 2, 3))


def test_patchcore_bank_is_the_coreset_of_all_patches(tiny_brick, lite0_backbones) -> None:
    train, _ = tiny_brick
    grid_patches = len(train) * (TINY_SIZE // 8) ** 2
    released = make_detector("patchcore", lite0_backbones, pretrain_dim=96, target_dim=64).fit(train)
    assert released.memory_bank_.shape == (int(grid_patches * 0.25), 64)
    concat = make_detector("patchcore", lite0_backbones, embedding="concat").fit(train)
    assert concat.memory_bank_.shape == (int(grid_patches * 0.25), 40 + 112)
    features = concat.extractor(train)
    patches = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    expected = patches[torch.from_numpy(coreset_indices(patches, 0.25, seed=0))]
    torch.testing.assert_close(concat.memory_bank_, expected, rtol=0, atol=0)


def test_cfa_training_pulls_features_to_the_centroids(tiny_brick, lite0_backbones) -> None:
    train, _ = tiny_brick
    detector = make_detector("cfa", lite0_backbones, gamma_c=2)
    detector.epochs = 8
    detector.fit(train)
    assert detector.centroids_.shape == ((TINY_SIZE // 8) ** 2 // 2, 152)
    assert len(detector.loss_history_) == 8
    assert detector.loss_history_[-1] < 0.7 * detector.loss_history_[0]


def test_patchcore_options_change_only_what_they_name(tiny_brick, lite0_backbones) -> None:
    train, test = tiny_brick
    fitted = make_detector("patchcore", lite0_backbones).fit(train)
    for option in (dict(image_score="reweighted"), dict(distance="euclidean")):
        rescored = fitted.with_scoring(**option)
        assert rescored.memory_bank_ is fitted.memory_bank_ and fitted.image_score == "max"
        fresh = make_detector("patchcore", lite0_backbones, **option).fit(train)
        np.testing.assert_allclose(rescored.predict(test).scores, fresh.predict(test).scores, rtol=1e-5)
    with pytest.raises(ValueError, match="test-time options"):
        fitted.with_scoring(coreset_ratio=0.5)
    for name, bad in [
        ("embedding", "mean"),
        ("sampler", "fast"),
        ("distance", "l1"),
        ("image_score", "mean"),
    ]:
        with pytest.raises(ValueError, match=f"unknown {name} '{bad}'; choose one of"):
            make_detector("patchcore", lite0_backbones, **{name: bad})
    padded = make_detector("patchcore", lite0_backbones, embedding="concat").extractor(test[:2])
    unpadded = make_detector("patchcore", lite0_backbones, embedding="concat", count_padding=False).extractor(
        test[:2]
    )
    # the first stage's grid: the corner differs by the factor 9/4, the interior not at all
    torch.testing.assert_close(padded[:, :40, 0, 0] * 9 / 4, unpadded[:, :40, 0, 0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded[:, :40, 2:-2, 2:-2], unpadded[:, :40, 2:-2, 2:-2])


def test_cfa_learns_its_radius_as_released(tiny_brick, lite0_backbones) -> None:
    train, _ = tiny_brick
    learned = make_detector("cfa", lite0_backbones).fit(train)  # r starts at 1e-5 and is trained
    assert learned.radius_history_[0] > 1e-4 and learned.radius_ > learned.radius_history_[0]
    fixed = make_detector("cfa", lite0_backbones, learn_radius=False).fit(train)
    assert fixed.radius_history_ == pytest.approx([1e-5] * 3) and fixed.radius_ == pytest.approx(1e-5)


# ---------------------------------------------------------------- known answers on the synthetic benchmark


@pytest.fixture(scope="module")
def quick_rgb():
    """The synthetic "quick" variant (224 px, 100 train / 60 test images), materialised once."""
    from uiad_lite.data import load

    return {
        name: (list(splits.train), list(splits.test))
        for name in ("brick", "washer")
        for splits in [load("synthetic", category=name, size="quick")]
    }


def scores_of(prediction, test) -> tuple[float, float]:
    labels = np.array([sample.label for sample in test])
    masks = np.stack([sample.mask for sample in test])
    return image_auroc(prediction.scores, labels), aupro(prediction.maps, masks)


def test_pretrained_features_beat_random_features(quick_rgb) -> None:
    """Same PatchCore pipeline, only the weights differ: ImageNet weights must separate defects far better."""
    gains_i, gains_pro = [], []
    for name in ("brick", "washer"):
        train, test = quick_rgb[name]
        results = {}
        for pretrained in (True, False):
            detector = PatchCore(
                image_size=128,
                coreset_ratio=0.1,
                projection_dim=32,
                pretrained=pretrained,
                device="cpu",
                progress=False,
            )
            results[pretrained] = scores_of(detector.fit(train[:30]).predict(test), test)
        gains_i.append(results[True][0] - results[False][0])
        gains_pro.append(results[True][1] - results[False][1])
    assert np.mean(gains_i) > 0.25, f"I-AUROC gains of pretrained over random weights: {gains_i}"
    assert np.mean(gains_pro) > 0.3, f"AU-PRO gains of pretrained over random weights: {gains_pro}"


def test_patchcore_reaches_a_known_score_on_synthetic_brick(quick_rgb) -> None:
    """The heavy check: PatchCore with the offline backbone at 224 px on synthetic brick ("quick" data).

    To keep the suite short it uses 50 of the 100 training images and a 2 % coreset; the benchmark
    (benchmarks/memory_bank_bench.py) runs the full QUICK setting on every RGB category.
    """
    train, test = quick_rgb["brick"]
    detector = PatchCore(image_size=224, coreset_ratio=0.02, projection_dim=64, device="cpu", progress=False)
    i_auroc, pro = scores_of(detector.fit(train[:50]).predict(test), test)
    assert i_auroc >= 0.95, f"I-AUROC {i_auroc:.3f}"
    assert pro >= 0.85, f"AU-PRO {pro:.3f}"


def test_cfa_feature_adaptation_improves_detection(quick_rgb) -> None:
    """CFA's point: training the descriptor on normal patches beats the untrained descriptor."""
    train, test = quick_rgb["washer"]
    results = {}
    for epochs in (0, 10):
        detector = CFA(layers=(2, 3), image_size=128, epochs=epochs, device="cpu", progress=False)
        results[epochs] = scores_of(detector.fit(train[:30]).predict(test), test)
    assert results[10][0] > results[0][0] + 0.1, results


def test_full_mode_settings_run_on_the_papers_backbone(tiny_brick) -> None:
    """Chapter 03's QUICK=False settings on wide_resnet50_2 (random weights: no download here; on a GPU
    machine the cached ImageNet weights are used). Checks the layer names, channel counts and strides the
    papers rely on, and that every detector runs end to end with them."""
    from uiad_lite.features import backbone

    train, test = tiny_brick
    name = "wide_resnet50_2.tv_in1k"  # torchvision's weights, the papers' choice
    stages = backbone(name, ("layer1", "layer2", "layer3"), device="cpu", pretrained=False)
    assert stages.info.channels == (256, 512, 1024) and stages.info.strides == (4, 8, 16)
    later = backbone(name, ("layer2", "layer3"), device="cpu", pretrained=False)
    common = dict(image_size=TINY_SIZE, progress=False, seed=0)
    detectors = [
        PaDiM(backbone=stages, reduced_dim=550, **common),  # 550 of the 1 792 channels, as in the paper
        PatchCore(backbone=later, coreset_ratio=0.1, **common),
        CFA(backbone=stages, epochs=1, **common),
    ]
    for detector in detectors:
        prediction = detector.fit(train).predict(test)
        assert prediction.maps.shape == (len(test), TINY_SIZE, TINY_SIZE)
        assert np.all(np.isfinite(prediction.scores))
    padim, patchcore, cfa = detectors
    assert padim.mean_.shape == ((TINY_SIZE // 4) ** 2, 550)
    # the released embedding: 512·9 and 1024·9 values per patch pooled to 1024 each, then both to 1024
    assert patchcore.memory_bank_.shape == (int(len(train) * (TINY_SIZE // 8) ** 2 * 0.1), 1024)
    assert cfa.centroids_.shape == ((TINY_SIZE // 4) ** 2, 1792)


def test_anomaly_map_smoothing_is_a_gaussian_of_sigma_pixels() -> None:
    """One hot cell on a grid as fine as the image (bilinear upsampling is then the identity): the map is
    the smoothing kernel itself, whose spread must be sigma = 4 px along each axis."""
    from uiad_lite.methods.memory_bank import anomaly_maps

    scores = torch.zeros(1, 41, 41)
    scores[0, 20, 20] = 1.0
    kernel = anomaly_maps(scores, image_size=41, output_size=(41, 41), sigma=4.0)[0].astype(np.float64)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-3)
    offsets = np.arange(41) - 20
    variance = (kernel.sum(axis=0) * offsets**2).sum() / kernel.sum()
    assert variance == pytest.approx(16.0, rel=0.02)
    unsmoothed = anomaly_maps(scores, image_size=41, output_size=(41, 41), sigma=0.0)[0]
    assert unsmoothed[20, 20] == pytest.approx(1.0) and unsmoothed.sum() == pytest.approx(1.0)


def test_a_grey_or_float_image_is_named_by_its_sample(tiny_brick, lite0_backbones) -> None:
    train, test = tiny_brick
    detector = make_detector("patchcore", lite0_backbones).fit(train)
    grey = Sample("brick", "test", 1, "crack", "brick/test/crack/007.png", image=test[0].image[..., 0])
    with pytest.raises(ValueError, match=r"'brick/test/crack/007.png': image must be H×W×3 uint8 RGB"):
        detector.predict([grey])
