"""The image-level simulations follow the authors' released code (DRÆM, CutPaste reference, NSA)."""

from __future__ import annotations

import cv2
import numpy as np

from uiad_lite.simulation import draem_perlin, nsa_poisson, random_perlin_field
from uiad_lite.simulation import image as image_module
from uiad_lite.simulation.image import cutpaste, jitter_colors
from uiad_lite.simulation.texture import TEXTURE_AUGMENTATIONS, augment_texture

# ---------------------------------------------------------------- DRÆM


def test_draem_texture_augmentations_are_the_ten_of_the_released_code_three_drawn_each_time():
    assert set(TEXTURE_AUGMENTATIONS) == {
        "gamma_contrast", "multiply_add_brightness", "sharpness", "hue_saturation", "solarize",
        "posterize", "invert", "autocontrast", "equalize", "rotate"}
    texture = np.random.default_rng(0).integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    calls: list[str] = []
    recording = {name: (lambda t, rng, name=name: calls.append(name) or t) for name in TEXTURE_AUGMENTATIONS}
    original = dict(TEXTURE_AUGMENTATIONS)
    TEXTURE_AUGMENTATIONS.update(recording)
    try:
        seen = set()
        for seed in range(60):
            calls.clear()
            augment_texture(texture, np.random.default_rng(seed))
            assert len(calls) == 3 and len(set(calls)) == 3  # three distinct operations
            seen.update(calls)
        assert seen == set(TEXTURE_AUGMENTATIONS)  # every one of the ten can be drawn
    finally:
        TEXTURE_AUGMENTATIONS.update(original)


def test_each_texture_operation_does_what_its_name_says():
    rng = np.random.default_rng(1)
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], (16, 1, 3))
    np.testing.assert_array_equal(TEXTURE_AUGMENTATIONS["invert"](grey, rng), 255 - grey)
    for seed in range(5):
        posterized = TEXTURE_AUGMENTATIONS["posterize"](grey, np.random.default_rng(seed))
        assert len(np.unique(posterized)) <= len(np.unique(grey)) and (posterized <= grey).all()
    low_contrast = (grey // 4 + 100).astype(np.uint8)
    stretched = TEXTURE_AUGMENTATIONS["autocontrast"](low_contrast, np.random.default_rng(0))
    assert np.ptp(stretched) > 2 * np.ptp(low_contrast)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    shifted = [TEXTURE_AUGMENTATIONS["hue_saturation"](red, np.random.default_rng(s)) for s in range(10)]
    assert any(int(s[..., 1].max()) + int(s[..., 2].max()) > 20 for s in shifted)  # the hue moved


def test_texture_rotation_and_perlin_rotation_fill_with_zeros():
    white = np.full((40, 40, 3), 255, np.uint8)
    for seed in range(5):
        rotated = TEXTURE_AUGMENTATIONS["rotate"](white, np.random.default_rng(seed))
        corners = rotated[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert (corners < 255).any()  # uncovered corners fade to black; a reflected border stays white
        assert (rotated[20, 20] == 255).all()
    field = random_perlin_field((64, 64), np.random.default_rng(2), rotation=(45.0, 45.0))
    assert field[0, 0] == 0.0 and field[-1, -1] == 0.0 and field[0, -1] == 0.0
    unrotated = random_perlin_field((64, 64), np.random.default_rng(2), rotate=False)
    assert np.abs(unrotated[:3, :3]).max() > 0.0 or np.abs(unrotated[-3:, -3:]).max() > 0.0


def test_draem_texture_opacity_is_drawn_as_the_released_code_draws_it():
    """Black image, constant texture 250, no texture augmentation: a blended pixel is round(w * 250)
    with the texture opacity w = 1 - U[0, 0.8), i.e. in (0.2, 1]."""
    black = np.zeros((48, 48, 3), np.uint8)
    constant = np.full((8, 8, 3), 250, np.uint8)
    values = []
    for seed in range(150):
        altered, mask = draem_perlin(black, np.random.default_rng(seed), texture_source=[constant],
                                     texture_ops=0)
        values.append(altered[mask][:, 0].mean())
    values = np.array(values)
    assert values.min() >= 0.2 * 250 - 1 and values.max() <= 250
    assert values.min() < 0.3 * 250 and values.max() > 0.9 * 250  # the whole range is used


# ---------------------------------------------------------------- CutPaste


def test_hue_jitter_turns_the_colour_wheel_within_a_tenth():
    red = np.zeros((6, 6, 3), np.uint8)
    red[..., 0] = 255
    greens_or_blues = []
    for seed in range(40):
        out = jitter_colors(red, np.random.default_rng(seed), brightness=0, contrast=0, saturation=0, hue=0.1)
        assert (out[..., 0] == 255).all()  # value and saturation kept
        greens_or_blues.append(max(int(out[..., 1].max()), int(out[..., 2].max())))
    # 0.1 of the circle is 36 degrees: at most 36/60 of full green or blue
    assert max(greens_or_blues) <= 0.6 * 255 + 1 and max(greens_or_blues) > 0.3 * 255
    assert (jitter_colors(red, np.random.default_rng(0), hue=0.0, brightness=0, contrast=0, saturation=0)
            == red).all()


def test_cutpaste_patch_jitter_includes_hue():
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 220
    image[::2, :, 0] = 200  # stripes, so the contrast and saturation have something to act on
    hues = set()
    for seed in range(20):
        altered, mask = cutpaste(image, np.random.default_rng(seed))
        hsv = cv2.cvtColor(altered[mask][None], cv2.COLOR_RGB2HSV_FULL)[0]
        hues.update(np.unique(hsv[:, 0]).tolist())
    assert len(hues - {0}) > 0  # a pure red image gains other hues only through the hue jitter


def test_cutpaste_scar_rotates_the_cut_pixels_not_only_the_outline():
    """Rows of the image carry their row index in red. A scar cut upright and rotated by 30 degrees
    shows several row indices along one image row; a rotated outline over unrotated pixels would not."""
    rows, cols = np.mgrid[:96, :96]
    image = np.stack([rows * 2, cols * 2, np.full_like(rows, 128)], axis=-1).astype(np.uint8)
    for seed in range(5):
        altered, mask = cutpaste(image, np.random.default_rng(seed), variant="scar", color_jitter=0.0,
                                 scar_width=(8, 8), scar_length=(24, 24), scar_angle=(30.0, 30.0))
        assert abs(int(mask.sum()) - 8 * 24) <= 0.2 * 8 * 24  # the footprint keeps the cut's area
        varying_rows = [r for r in np.unique(np.nonzero(mask)[0])
                        if len(np.unique(altered[r][mask[r]][:, 0])) > 1]
        assert len(varying_rows) >= 5


# ---------------------------------------------------------------- NSA


def test_nsa_multi_patch_rule_first_patch_always_each_further_with_probability_half(monkeypatch):
    image = np.random.default_rng(0).integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    other = np.random.default_rng(1).integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    counts, calls = [], [0]
    real = image_module._nsa_patch

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(image_module, "_nsa_patch", counting)
    for seed in range(300):
        calls[0] = 0
        nsa_poisson(image, other, np.random.default_rng(seed), num_patches=3)
        counts.append(calls[0])
    frequency = np.bincount(counts, minlength=4)[1:4] / len(counts)
    np.testing.assert_allclose(frequency, [0.25, 0.5, 0.25], atol=0.08)  # 1 + Binomial(2, 1/2)


def test_nsa_patch_half_widths_follow_the_released_gamma_distribution():
    """One patch, no resize, a contrasting source: the patch rectangle is the mask's bounding box
    (plus the one-pixel border the blend leaves out). Half-widths are (0.03 + Gamma(2, 0.05)) x side,
    clipped to [0.03, 0.4] x side: mean about 0.13 x side."""
    side = 160
    rows, cols = np.mgrid[:side, :side]
    destination = np.full((side, side, 3), 60, np.uint8)
    source = np.stack([(cols * 7) % 256, (rows * 5) % 256, np.full_like(rows, 220)], -1).astype(np.uint8)
    heights = []
    for seed in range(200):
        _, mask = nsa_poisson(destination, source, np.random.default_rng(seed), num_patches=1,
                              resize_bounds=(1.0, 1.0), min_change=0)
        found = np.nonzero(mask.any(axis=1))[0]
        heights.append((found.max() - found.min() + 3) / 2)
    # expected: the released draw, with its clipping of the source rectangle at the image border and
    # of the patch sides (resize factor 1) to the half-width bounds [5, 64] px, aspect ratio kept
    draw = np.random.default_rng(5)
    low, high = round(0.03 * side), round(0.4 * side)

    def cut(n):
        half = np.clip((0.03 + draw.gamma(2.0, 0.05, n)) * side, low, high).astype(int)
        centre = draw.integers(low, side - low, n)
        return np.minimum(centre + half, side) - np.maximum(centre - half, 0)

    cut_h, cut_w = cut(20000), cut(20000)
    new_h = np.clip(cut_h, low, high)
    new_w = np.clip((new_h / cut_h * cut_w).astype(int), low, high)
    new_h = np.clip((new_w / cut_w * cut_h).astype(int), low, high)
    # (the changed pixels can stop a row short of the blended rectangle: 12 % slack)
    assert abs(np.mean(heights) - new_h.mean() / 2) < 0.12 * new_h.mean() / 2
    assert max(heights) <= 0.4 * side + 1
