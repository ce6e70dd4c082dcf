"""Pretrained 2D feature extractors (offline weights) and PatchCore-style patch features."""

from uiad_lite.features.backbones import (
    Backbone,
    BackboneInfo,
    backbone,
    efficientnet_lite0_classifier,
    images_to_tensor,
    map_state_dict_by_position,
    resolve_device,
)
from uiad_lite.features.patch_features import (
    PatchFeatureExtractor,
    aggregate_neighbourhood,
    combine_stages,
    random_channel_subset,
    random_projection_matrix,
)

__all__ = [
    "Backbone",
    "BackboneInfo",
    "PatchFeatureExtractor",
    "aggregate_neighbourhood",
    "backbone",
    "combine_stages",
    "efficientnet_lite0_classifier",
    "images_to_tensor",
    "map_state_dict_by_position",
    "random_channel_subset",
    "random_projection_matrix",
    "resolve_device",
]
