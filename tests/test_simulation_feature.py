"""Feature-level simulation: SimpleNet Gaussian noise and GLASS gradient ascent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uiad_lite.simulation import gaussian_feature_noise, gradient_guided_noise


def normal_features(rows: int = 400, channels: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, channels)).astype(np.float32)


class LinearDiscriminator(torch.nn.Module):
    """Anomaly logit w.x + b; its loss gradient direction is known in closed form."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(weight.numel(), 1)
        with torch.no_grad():
            self.linear.weight.copy_(weight.reshape(1, -1))
            self.linear.bias.fill_(0.3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features).squeeze(-1)


def test_gaussian_noise_has_the_requested_spread():
    features = normal_features(rows=1000, channels=40)
    noisy, labels = gaussian_feature_noise(features, np.random.default_rng(1), sigma=0.05)
    assert isinstance(noisy, np.ndarray) and noisy.dtype == np.float32 and noisy.shape == features.shape
    assert labels.dtype == bool and labels.shape == (1000,) and labels.all()
    offsets = (noisy - features).astype(np.float64)
    assert abs(offsets.std() - 0.05) < 0.002
    assert abs(offsets.mean()) < 0.002


@pytest.mark.parametrize("sigma", [0.01, 0.1, 1.0])
def test_larger_sigma_moves_features_further(sigma):
    features = normal_features()
    noisy, _ = gaussian_feature_noise(features, np.random.default_rng(2), sigma=sigma)
    distance = np.linalg.norm(noisy - features, axis=1).mean()
    expected = sigma * np.sqrt(features.shape[1])  # chi distribution mean ~ sigma sqrt(C)
    assert 0.9 * expected < distance < 1.1 * expected


def test_fraction_selects_exactly_the_labelled_rows():
    features = normal_features()
    noisy, labels = gaussian_feature_noise(features, np.random.default_rng(3), fraction=0.25)
    assert labels.sum() == 100
    np.testing.assert_array_equal(noisy[~labels], features[~labels])
    assert (noisy[labels] != features[labels]).any(axis=1).all()


def test_feature_map_layout_and_torch_round_trip():
    feature_map = torch.from_numpy(np.random.default_rng(4).normal(size=(16, 6, 5)).astype(np.float32))
    noisy, labels = gaussian_feature_noise(feature_map, np.random.default_rng(5), sigma=0.2, fraction=0.5)
    assert isinstance(noisy, torch.Tensor) and noisy.dtype == torch.float32 and noisy.shape == (16, 6, 5)
    assert isinstance(labels, torch.Tensor) and labels.dtype == torch.bool and labels.shape == (6, 5)
    assert labels.sum() == 15
    changed = (noisy != feature_map).any(dim=0)
    assert torch.equal(changed, labels)
    # numpy and torch inputs give the same numbers for the same seed
    numpy_noisy, numpy_labels = gaussian_feature_noise(feature_map.numpy(), np.random.default_rng(5),
                                                       sigma=0.2, fraction=0.5)
    np.testing.assert_array_equal(numpy_noisy, noisy.numpy())
    np.testing.assert_array_equal(numpy_labels, labels.numpy())


def test_gaussian_noise_is_seeded():
    features = normal_features()
    first = gaussian_feature_noise(features, np.random.default_rng(6))[0]
    again = gaussian_feature_noise(features, np.random.default_rng(6))[0]
    other = gaussian_feature_noise(features, np.random.default_rng(7))[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "features, kwargs, message",
    [
        (np.zeros((2, 3, 4, 5), np.float32), {}, "shape"),
        (np.zeros((4, 3), np.int64), {}, "floating"),
        (np.zeros((0, 3), np.float32), {}, "empty"),
        (np.full((4, 3), np.nan, np.float32), {}, "NaN"),
        (np.zeros((4, 3), np.float32), {"sigma": 0.0}, "sigma"),
        (np.zeros((4, 3), np.float32), {"fraction": 0.0}, "fraction"),
        ([[0.0, 1.0]], {}, "numpy array or torch tensor"),
    ],
)
def test_gaussian_noise_rejects_bad_input(features, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gaussian_feature_noise(features, np.random.default_rng(0), **kwargs)


# ---------------------------------------------------------------- GLASS


def test_one_ascent_step_moves_against_a_linear_discriminator_weight():
    """For D(x) = w.x + b the loss softplus(-D) has gradient -sigmoid(-D) w: the normalised step is -w/|w|."""
    features = normal_features(rows=50, channels=8)
    weight = torch.arange(1.0, 9.0)
    discriminator = LinearDiscriminator(weight)
    start, _ = gaussian_feature_noise(features, np.random.default_rng(8), sigma=0.05)
    guided, labels = gradient_guided_noise(features, discriminator, np.random.default_rng(8), sigma=0.05,
                                           steps=1, step_size=0.2)
    expected = start - 0.2 * (weight / weight.norm()).numpy()
    np.testing.assert_allclose(guided, expected, atol=1e-5)
    assert labels.all()


def test_ascent_lowers_the_anomaly_logit_of_a_nonlinear_discriminator():
    torch.manual_seed(0)
    discriminator = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    features = torch.from_numpy(normal_features(rows=200, channels=16))
    start, _ = gaussian_feature_noise(features, np.random.default_rng(9), sigma=0.1)
    guided, _ = gradient_guided_noise(features, discriminator, np.random.default_rng(9), sigma=0.1, steps=5,
                                      step_size=0.05)
    with torch.no_grad():
        assert discriminator(guided).mean() < discriminator(start).mean() - 0.01
    # only the features were differentiated: the discriminator has no gradients and is unchanged
    assert all(parameter.grad is None for parameter in discriminator.parameters())


def test_truncated_projection_keeps_offsets_inside_the_shell():
    discriminator = LinearDiscriminator(torch.ones(12))
    features = normal_features(rows=300, channels=12)
    for radius in [(0.5, 0.8), (2.0, 3.0)]:
        guided, labels = gradient_guided_noise(features, discriminator, np.random.default_rng(10), sigma=0.3,
                                               steps=4, step_size=1.0, radius=radius, project_every=2)
        lengths = np.linalg.norm(guided - features, axis=1)
        assert lengths.min() >= radius[0] - 1e-4 and lengths.max() <= radius[1] + 1e-4
        assert labels.all()


def test_released_defaults_twenty_steps_of_0_001_then_the_shell_every_fifth_step():
    """GLASS as released: 20 ascent steps of 0.001 along the normalised gradient, projection of the
    offset onto 0.5 <= |d| <= 1.0 after steps 5, 10, 15, 20 (never before the first five)."""
    features = normal_features(rows=40, channels=16)
    weight = torch.linspace(-1.0, 2.0, 16)
    noise, _ = gaussian_feature_noise(features, np.random.default_rng(3))  # SimpleNet's sigma 0.015
    assert np.linalg.norm(noise - features, axis=1).max() < 0.2  # the start lies inside the shell's hole
    free, _ = gradient_guided_noise(features, LinearDiscriminator(weight), np.random.default_rng(3),
                                    radius=(0.0, float("inf")))
    np.testing.assert_allclose(free, noise - 20 * 0.001 * (weight / weight.norm()).numpy(), atol=1e-5)
    guided, _ = gradient_guided_noise(features, LinearDiscriminator(weight), np.random.default_rng(3))
    lengths = np.linalg.norm(guided - features, axis=1)
    # lifted onto the inner radius at step 5, then at most fifteen more steps of 0.001
    assert lengths.min() >= 0.5 - 1e-4 and lengths.max() <= 0.5 + 15 * 0.001 + 1e-4
    early, _ = gradient_guided_noise(features, LinearDiscriminator(weight), np.random.default_rng(3), steps=4)
    assert np.linalg.norm(early - features, axis=1).max() < 0.2  # no projection before step 5


def test_guided_noise_on_a_feature_map_under_no_grad_with_partial_fraction():
    discriminator = LinearDiscriminator(torch.linspace(-1.0, 1.0, 10))
    feature_map = torch.from_numpy(np.random.default_rng(11).normal(size=(10, 4, 6)).astype(np.float32))
    with torch.no_grad():  # callers often synthesise inside no_grad; the ascent must still work
        guided, labels = gradient_guided_noise(feature_map, discriminator, np.random.default_rng(12), steps=3,
                                               fraction=0.5, radius=(0.5, 1.0))
    assert guided.shape == feature_map.shape and labels.shape == (4, 6) and labels.sum() == 12
    assert torch.equal((guided != feature_map).any(dim=0), labels)
    assert not guided.requires_grad
    again, _ = gradient_guided_noise(feature_map, discriminator, np.random.default_rng(12), steps=3,
                                     fraction=0.5, radius=(0.5, 1.0))
    assert torch.equal(guided, again)


def test_guided_noise_rejects_bad_arguments():
    features = normal_features(rows=10, channels=4)
    discriminator = LinearDiscriminator(torch.ones(4))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="radius"):
        gradient_guided_noise(features, discriminator, rng, radius=(2.0, 1.0))
    with pytest.raises(ValueError, match="steps"):
        gradient_guided_noise(features, discriminator, rng, steps=-1)
    with pytest.raises(ValueError, match="one logit per feature"):
        gradient_guided_noise(features, lambda x: x.sum(), rng, steps=1)
