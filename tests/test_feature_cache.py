"""The shared feature cache: cached features equal fresh ones, any key change re-extracts, bad entries
are rebuilt (never used), and the folder stays within its size limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uiad_lite.data.sample import Sample
from uiad_lite.features import PatchFeatureExtractor, backbone
from uiad_lite.features import cache as feature_cache


@pytest.fixture(scope="module")
def lite0():
    return backbone("efficientnet_lite0", layers=(2, 3), device="cpu")


def _samples(seed: int = 0, count: int = 3, split: str = "train") -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [
        Sample(
            "toy", split, path=f"toy/{split}/{i:03d}.png", image=rng.integers(0, 255, (70, 50, 3), np.uint8)
        )
        for i in range(count)
    ]


class CountingBackbone(torch.nn.Module):
    """The real backbone, counting the images it is asked to process."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.info, self.images_seen = inner, inner.info, 0

    @property
    def device(self):
        return self.inner.device

    def state_dict(self, *args, **kwargs):
        return self.inner.state_dict(*args, **kwargs)

    def forward(self, images):
        self.images_seen += images.shape[0]
        return self.inner(images)


@pytest.fixture()
def cache_folder(tmp_path, monkeypatch):
    folder = tmp_path / "features"
    monkeypatch.setenv("UIAD_FEATURE_CACHE", str(folder))
    return folder


def test_cached_features_equal_fresh_ones_and_skip_the_backbone(lite0, cache_folder, monkeypatch):
    samples = _samples()
    monkeypatch.setenv("UIAD_FEATURE_CACHE", "off")
    fresh = PatchFeatureExtractor(lite0, image_size=64, batch_size=2, progress=False)(samples)
    monkeypatch.setenv("UIAD_FEATURE_CACHE", str(cache_folder))
    counting = CountingBackbone(lite0)
    extractor = PatchFeatureExtractor(counting, image_size=64, batch_size=2, progress=False)
    first = extractor(samples)
    assert counting.images_seen == 3 and len(list(cache_folder.glob("*.pt"))) == 1
    second = extractor(samples)
    assert counting.images_seen == 3, "the second call must come from the cache"
    assert torch.equal(first, fresh) and torch.equal(second, fresh)
    # another method on the same backbone (PaDiM-style: no aggregation, nearest, a channel subset) reuses it
    other = PatchFeatureExtractor(
        counting, image_size=64, neighbourhood=1, upsample_mode="nearest", reduction="subset", reduced_dim=20,
        progress=False,
    )(samples)  # fmt: skip
    assert counting.images_seen == 3 and other.shape == (3, 20, 8, 8)
    monkeypatch.setenv("UIAD_FEATURE_CACHE", "off")
    expected = PatchFeatureExtractor(
        lite0, image_size=64, neighbourhood=1, upsample_mode="nearest", reduction="subset", reduced_dim=20,
        progress=False,
    )(samples)  # fmt: skip
    torch.testing.assert_close(other, expected, atol=1e-4, rtol=1e-4)  # batch size 16 vs 2


def test_a_changed_key_extracts_again(lite0, cache_folder):
    counting = CountingBackbone(lite0)
    extract = PatchFeatureExtractor(counting, image_size=64, progress=False)
    extract(_samples())
    seen = counting.images_seen
    changed_pixels = _samples()
    changed_pixels[1].image = changed_pixels[1].image.copy()
    changed_pixels[1].image[0, 0, 0] ^= 1  # one pixel
    extract(changed_pixels)
    assert counting.images_seen == 2 * seen
    extract(_samples(split="test"))  # same pixels, another split
    assert counting.images_seen == 3 * seen
    PatchFeatureExtractor(counting, image_size=96, progress=False)(_samples())  # another input size
    assert counting.images_seen == 4 * seen
    layers_1_2 = CountingBackbone(backbone("efficientnet_lite0", layers=(1, 2), device="cpu"))
    PatchFeatureExtractor(layers_1_2, image_size=64, progress=False)(_samples())
    assert layers_1_2.images_seen == seen
    random_weights = CountingBackbone(
        backbone("efficientnet_lite0", layers=(2, 3), device="cpu", pretrained=False)
    )
    PatchFeatureExtractor(random_weights, image_size=64, progress=False)(_samples())
    assert random_weights.images_seen == seen
    # layers (1, 2) lacked layer 1 and ran the backbone, but joined the entry of the same images and
    # weights: 4 image sets / sizes + the random weights
    assert len(list(cache_folder.glob("*.pt"))) == 5


def test_truncated_or_foreign_entries_are_rebuilt_not_used(lite0, cache_folder):
    counting = CountingBackbone(lite0)
    extract = PatchFeatureExtractor(counting, image_size=64, progress=False)
    reference = extract(_samples())
    [entry] = cache_folder.glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated
    assert torch.equal(extract(_samples()), reference) and counting.images_seen == 6
    # an entry written for another key (e.g. a stale file under this name): detected by its stored key
    foreign = torch.load(entry, weights_only=True)
    foreign["key"] = {**foreign["key"], "pixels": "0" * 64}
    foreign["stages"] = [torch.zeros_like(t) for t in foreign["stages"]]
    torch.save(foreign, entry)
    assert torch.equal(extract(_samples()), reference) and counting.images_seen == 9
    assert torch.equal(extract(_samples()), reference) and counting.images_seen == 9  # rebuilt entry is good


def test_the_folder_keeps_to_its_size_limit_least_recently_used_first(lite0, cache_folder, monkeypatch):
    extract = PatchFeatureExtractor(lite0, image_size=64, progress=False)
    extract(_samples(seed=1))
    one_entry = next(cache_folder.glob("*.pt")).stat().st_size
    monkeypatch.setenv("UIAD_FEATURE_CACHE_MB", str(2.5 * one_entry / 2**20))
    extract(_samples(seed=2))
    import os
    import time

    time.sleep(0.01)
    first_key = feature_cache.feature_key(_samples(seed=1), lambda i: _samples(seed=1)[i].image, lite0, 64)
    assert feature_cache.load(first_key, [2, 3]) is not None  # touched: now the most recently used
    first_file = feature_cache._file_for(cache_folder, first_key)
    os.utime(next(p for p in cache_folder.glob("*.pt") if p != first_file), ns=(1, 1))
    extract(_samples(seed=3))
    assert len(list(cache_folder.glob("*.pt"))) == 2
    assert feature_cache.load(first_key, [2, 3]) is not None, "the recently used entry stays"
    monkeypatch.setenv("UIAD_FEATURE_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="UIAD_FEATURE_CACHE_MB"):
        extract(_samples(seed=4))


def test_methods_asking_for_overlapping_layers_share_one_entry(cache_folder, monkeypatch):
    """PaDiM (layers 1-3) then PatchCore (layers 2-3) on the same images: the second runs no forward
    pass and gets exactly the stages a fresh extraction gives; asking first for fewer layers adds the
    missing one to the same entry."""
    layers_1_3 = CountingBackbone(backbone("efficientnet_lite0", layers=(1, 2, 3), device="cpu"))
    layers_2_3 = CountingBackbone(backbone("efficientnet_lite0", layers=(2, 3), device="cpu"))
    PatchFeatureExtractor(layers_1_3, image_size=64, progress=False)(_samples())
    shared = PatchFeatureExtractor(layers_2_3, image_size=64, progress=False)(_samples())
    assert (layers_1_3.images_seen, layers_2_3.images_seen) == (3, 0)
    monkeypatch.setenv("UIAD_FEATURE_CACHE", "off")
    fresh = PatchFeatureExtractor(layers_2_3.inner, image_size=64, progress=False)(_samples())
    torch.testing.assert_close(shared, fresh, atol=1e-5, rtol=1e-5)
    monkeypatch.setenv("UIAD_FEATURE_CACHE", str(cache_folder))
    # the other order, on other images: (2, 3) first, then (1, 2, 3) extracts once and merges
    PatchFeatureExtractor(layers_2_3, image_size=64, progress=False)(_samples(seed=5))
    PatchFeatureExtractor(layers_1_3, image_size=64, progress=False)(_samples(seed=5))
    PatchFeatureExtractor(layers_2_3, image_size=64, progress=False)(_samples(seed=5))
    PatchFeatureExtractor(layers_1_3, image_size=64, progress=False)(_samples(seed=5))
    assert (layers_1_3.images_seen, layers_2_3.images_seen) == (6, 3)
    assert len(list(cache_folder.glob("*.pt"))) == 2
