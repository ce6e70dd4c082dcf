"""Image-level simulation: CutPaste, DRÆM, NSA and the foreground option. Masks must be exact."""

from __future__ import annotations

import numpy as np
import pytest

from uiad_lite.data.sample import Sample
from uiad_lite.simulation import (
    cutpaste,
    draem_perlin,
    foreground_mask,
    nsa_poisson,
    simulate_on_sample,
    synthetic_texture,
)

SIZE = 64


def object_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured disk (the object) on a flat dark background, plus the disk mask."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    disk = (rows - 32) ** 2 + (cols - 30) ** 2 < 22**2
    image = np.full((SIZE, SIZE, 3), 25, np.uint8)
    texture = np.stack([120 + 2 * cols, 90 + 2 * rows, 140 + 40 * np.sin(cols / 3.0)], axis=-1)
    texture = texture + rng.integers(0, 30, size=texture.shape)
    image[disk] = np.clip(texture[disk], 0, 255).astype(np.uint8)
    return image, disk


def other_normal_image() -> np.ndarray:
    return object_image(seed=1)[0][:, ::-1].copy()


GENERATORS = {
    "cutpaste_patch": lambda image, rng, **kw: cutpaste(image, rng, variant="patch", **kw),
    "cutpaste_scar": lambda image, rng, **kw: cutpaste(image, rng, variant="scar", **kw),
    "draem_synthetic_texture": lambda image, rng, **kw: draem_perlin(image, rng, **kw),
    "draem_texture_list": lambda image, rng, **kw: draem_perlin(
        image, rng, texture_source=[synthetic_texture((20, 30), np.random.default_rng(9)),
                                    np.full((10, 10), 200, np.uint8)], **kw),
    "nsa": lambda image, rng, **kw: nsa_poisson(image, other_normal_image(), rng, **kw),
    "nsa_no_threshold": lambda image, rng, **kw: nsa_poisson(image, other_normal_image(), rng, min_change=0,
                                                             **kw),
}


def assert_exact_mask(original: np.ndarray, altered: np.ndarray, mask: np.ndarray) -> None:
    assert altered.dtype == np.uint8 and altered.shape == original.shape
    assert mask.dtype == bool and mask.shape == original.shape[:2]
    assert mask.any()
    np.testing.assert_array_equal(altered[~mask], original[~mask])  # nothing outside the mask moved
    assert (altered != original).any(axis=-1)[mask].all()  # every masked pixel really changed


def mask_box(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("seed", range(8))
def test_mask_marks_exactly_the_changed_pixels(name, seed):
    image, _ = object_image()
    before = image.copy()
    altered, mask = GENERATORS[name](image, np.random.default_rng(seed))
    np.testing.assert_array_equal(image, before)  # the input is not modified in place
    assert_exact_mask(image, altered, mask)


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_output_different_seed_different_output(name):
    image, _ = object_image()
    first = GENERATORS[name](image, np.random.default_rng(4))
    again = GENERATORS[name](image, np.random.default_rng(4))
    other = GENERATORS[name](image, np.random.default_rng(5))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("method", ["threshold", "grabcut"])
def test_foreground_only_keeps_defects_on_the_object(name, method):
    image, disk = object_image()
    placement = foreground_mask(image, method=method)
    for seed in range(6):
        altered, mask = GENERATORS[name](image, np.random.default_rng(seed), foreground_only=True,
                                         foreground=method)
        assert_exact_mask(image, altered, mask)
        assert not (mask & ~placement).any()


@pytest.mark.parametrize("name", GENERATORS)
def test_explicit_foreground_mask_is_respected(name):
    image, _ = object_image()
    right_half = np.zeros(image.shape[:2], bool)
    right_half[:, 34:] = True
    for seed in range(6):
        altered, mask = GENERATORS[name](image, np.random.default_rng(seed), foreground_only=True,
                                         foreground=right_half)
        assert_exact_mask(image, altered, mask)
        assert not mask[:, :34].any()


# ---------------------------------------------------------------- CutPaste


def test_cutpaste_without_jitter_copies_one_block_of_the_same_image():
    """Every changed pixel equals the input pixel at one common offset (cut from the image itself)."""
    image, _ = object_image()
    for seed in range(5):
        altered, mask = cutpaste(image, np.random.default_rng(seed), color_jitter=0.0)
        rows, cols = np.nonzero(mask)
        offsets = [
            (dy, dx)
            for dy in range(-SIZE + 1, SIZE)
            for dx in range(-SIZE + 1, SIZE)
            if (0 <= rows + dy).all() and (rows + dy < SIZE).all() and (0 <= cols + dx).all()
            and (cols + dx < SIZE).all()
            and np.array_equal(image[rows + dy, cols + dx], altered[rows, cols])
        ]
        assert offsets, "pasted pixels are not a shifted copy of the image"
        assert (0, 0) not in offsets


def test_cutpaste_patch_respects_area_and_grows_with_area_ratio():
    image, _ = object_image()
    areas = {}
    for ratio in [(0.02, 0.04), (0.06, 0.08), (0.12, 0.15)]:
        sizes = []
        for seed in range(20):
            _, mask = cutpaste(image, np.random.default_rng(seed), area_ratio=ratio)
            box_h, box_w = mask_box(mask)
            assert box_h * box_w <= ratio[1] * SIZE * SIZE * 1.25 + 2 * (box_h + box_w)  # rounding slack
            sizes.append(mask.sum())
        areas[ratio] = np.mean(sizes)
    values = list(areas.values())
    assert values[0] < values[1] < values[2], areas


def test_cutpaste_scar_is_thin_and_elongated():
    image, _ = object_image()
    for seed in range(10):
        _, mask = cutpaste(image, np.random.default_rng(seed), variant="scar", scar_width=(2, 3),
                           scar_length=(20, 25), scar_angle=(0.0, 0.0))
        box_h, box_w = mask_box(mask)
        assert box_h >= 4 * box_w  # length runs down the rows when the angle is 0
        assert mask.sum() <= 4 * 26


def test_cutpaste_on_a_uniform_image_without_jitter_fails_clearly():
    flat = np.full((32, 32, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="changed no pixel"):
        cutpaste(flat, np.random.default_rng(0), color_jitter=0.0)
    altered, mask = cutpaste(flat, np.random.default_rng(0), color_jitter=0.3)  # jitter makes it visible
    assert_exact_mask(flat, altered, mask)


# ---------------------------------------------------------------- DRÆM


def test_draem_follows_its_blending_rule_with_a_single_beta():
    """Inside the mask, out = (1 - beta) I + beta A with one beta for all pixels and channels (A is a
    constant colour here, so each channel is a straight line in I with slope 1 - beta)."""
    image, _ = object_image()
    constant = np.full((8, 8, 3), (240, 30, 90), np.uint8)
    for seed in range(5):
        altered, mask = draem_perlin(image, np.random.default_rng(seed), texture_source=[constant],
                                     threshold=0.2, texture_ops=0)
        slopes = []
        for channel in range(3):
            original = image[..., channel][mask].astype(float)
            result = altered[..., channel][mask].astype(float)
            if original.std() < 5:
                continue
            slope, intercept = np.polyfit(original, result, 1)
            assert np.abs(slope * original + intercept - result).max() <= 1.0  # rounding only
            slopes.append(slope)
        assert slopes, "the mask fell on flat pixels only"
        assert np.ptp(slopes) < 0.05
        assert 0.2 - 0.05 <= 1.0 - slopes[0] <= 1.0 + 0.05  # beta inside [0.2, 1.0] up to fit error


def test_draem_threshold_controls_area_and_beta_controls_strength():
    image, _ = object_image()
    area = {
        t: np.mean([draem_perlin(image, np.random.default_rng(s), threshold=t)[1].sum() for s in range(20)])
        for t in (0.2, 0.4, 0.6)
    }
    assert area[0.2] > area[0.4] > area[0.6], area

    def strength(beta):
        changes = []
        for seed in range(20):
            altered, mask = draem_perlin(image, np.random.default_rng(seed), beta=beta)
            changes.append(np.abs(altered.astype(int) - image.astype(int))[mask].mean())
        return np.mean(changes)

    assert strength((0.1, 0.2)) < strength((0.5, 0.6)) < strength((0.9, 1.0))


def test_synthetic_texture_is_deterministic_and_uses_the_full_range():
    first = synthetic_texture((40, 50), np.random.default_rng(0))
    again = synthetic_texture((40, 50), np.random.default_rng(0))
    other = synthetic_texture((40, 50), np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (40, 50, 3) and first.dtype == np.uint8
    assert (first.reshape(-1, 3).min(axis=0) == 0).all() and (first.reshape(-1, 3).max(axis=0) == 255).all()


def test_draem_rejects_bad_textures_and_thresholds():
    image, _ = object_image()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="empty"):
        draem_perlin(image, rng, texture_source=[])
    with pytest.raises(ValueError, match=r"texture_source\[0\]"):
        draem_perlin(image, rng, texture_source=[np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="threshold"):
        draem_perlin(image, rng, threshold=1.0)
    with pytest.raises(ValueError, match="beta"):
        draem_perlin(image, rng, beta=(0.5, 1.5))


# ---------------------------------------------------------------- NSA


@pytest.mark.parametrize("min_change", [0, 3, 10])
def test_nsa_mask_is_the_set_of_pixels_changed_by_more_than_min_change(min_change):
    image, _ = object_image()
    for seed in range(6):
        altered, mask = nsa_poisson(image, other_normal_image(), np.random.default_rng(seed),
                                    min_change=min_change, num_patches=1)
        assert_exact_mask(image, altered, mask)
        change = np.abs(altered.astype(int) - image.astype(int)).max(axis=-1)
        assert (change[mask] > min_change).all()
        box_h, box_w = mask_box(mask)
        assert box_h <= 0.4 * SIZE + 1 and box_w <= 0.4 * SIZE + 1


def test_nsa_blend_is_seamless_where_a_plain_paste_would_jump():
    """A smooth destination and a strongly striped source: Poisson blending keeps the step across the
    mask outline near the source's own pixel-to-pixel gradient, while the interior changes a lot."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    destination = np.stack([60 + cols, 60 + rows, np.full_like(rows, 100)], axis=-1).astype(np.uint8)
    stripes = (127 + 120 * np.sin(cols / 5.0)).astype(np.uint8)
    source = np.stack([stripes, 255 - stripes, stripes], axis=-1)
    source_step = np.abs(np.diff(source.astype(int), axis=1)).max()
    for seed in range(6):
        altered, mask = nsa_poisson(destination, source, np.random.default_rng(seed), min_change=0,
                                    num_patches=1, width_bounds=(0.2, 0.5))
        jumps = []
        for axis in (0, 1):
            for shift in (1, -1):
                edge = mask & ~np.roll(mask, shift, axis=axis)  # masked pixel whose neighbour is not
                neighbour = np.roll(altered.astype(int), shift, axis=axis)
                jumps.append(np.abs(altered.astype(int) - neighbour).max(axis=-1)[edge])
        largest_jump = np.concatenate(jumps).max()
        assert largest_jump <= source_step + 5
        assert np.abs(altered.astype(int) - destination.astype(int)).max() > 2 * largest_jump


def test_nsa_fails_clearly_when_nothing_visible_can_be_blended():
    flat = np.full((32, 32, 3), 90, np.uint8)
    with pytest.raises(ValueError, match="too similar"):
        nsa_poisson(flat, flat.copy(), np.random.default_rng(0))


def test_nsa_rejects_bad_inputs():
    image, _ = object_image()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="other_normal_image"):
        nsa_poisson(image, image.astype(np.float32), rng)
    with pytest.raises(ValueError, match="too small"):
        nsa_poisson(image[:6, :6], image, rng)
    with pytest.raises(ValueError, match="min_change"):
        nsa_poisson(image, image, rng, min_change=-1)


# ---------------------------------------------------------------- foreground


@pytest.mark.parametrize("method", ["threshold", "grabcut"])
def test_foreground_mask_recovers_the_object(method):
    image, disk = object_image()
    found = foreground_mask(image, method=method)
    assert found.dtype == bool and found.shape == disk.shape
    iou = (found & disk).sum() / (found | disk).sum()
    assert iou > 0.95
    np.testing.assert_array_equal(found, foreground_mask(image, method=method))  # deterministic


@pytest.mark.parametrize("method", ["threshold", "grabcut"])
def test_uniform_image_has_no_foreground(method):
    flat = np.full((32, 32, 3), 77, np.uint8)
    with pytest.raises(ValueError, match="no foreground"):
        foreground_mask(flat, method=method)
    with pytest.raises(ValueError, match="no foreground"):
        cutpaste(flat, np.random.default_rng(0), foreground_only=True, foreground=method)


def test_bad_foreground_arguments_raise():
    image, _ = object_image()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="method"):
        foreground_mask(image, method="watershed")
    with pytest.raises(ValueError, match="empty"):
        draem_perlin(image, rng, foreground_only=True, foreground=np.zeros((SIZE, SIZE), bool))
    with pytest.raises(ValueError, match="bool mask"):
        draem_perlin(image, rng, foreground_only=True, foreground=np.ones((SIZE, SIZE + 1), bool))


@pytest.mark.parametrize("bad", [np.zeros((16, 16), np.uint8), np.zeros((16, 16, 3), np.float32),
                                 np.zeros((16, 16, 4), np.uint8), [[1, 2], [3, 4]]])
def test_generators_reject_non_rgb_uint8_images(bad):
    rng = np.random.default_rng(0)
    for generate in (lambda: cutpaste(bad, rng), lambda: draem_perlin(bad, rng),
                     lambda: nsa_poisson(bad, other_normal_image(), rng), lambda: foreground_mask(bad)):
        with pytest.raises(ValueError, match="H x W x 3 uint8"):
            generate()
    with pytest.raises(ValueError, match="variant"):
        cutpaste(object_image()[0], rng, variant="stamp")


# ---------------------------------------------------------------- Sample wrapper


def test_simulate_on_sample_returns_a_labelled_copy():
    image, _ = object_image()
    old_mask = np.zeros((SIZE, SIZE), bool)
    old_mask[0, 0] = True
    sample = Sample(category="disk", split="test", image=image, mask=old_mask, path="disk/000.png")
    simulated = simulate_on_sample(sample, np.random.default_rng(3), cutpaste, variant="scar")
    expected_image, expected_mask = cutpaste(image, np.random.default_rng(3), variant="scar")
    np.testing.assert_array_equal(simulated.image, expected_image)
    np.testing.assert_array_equal(simulated.mask, expected_mask | old_mask)
    assert simulated.label == 1 and simulated.defect == "simulated_cutpaste"
    assert simulated.meta["simulated"] == "cutpaste"
    assert sample.label == 0 and sample.image is image and sample.mask is old_mask  # original untouched

    nsa = simulate_on_sample(sample, np.random.default_rng(3), nsa_poisson,
                             other_normal_image=other_normal_image())
    assert nsa.defect == "simulated_nsa_poisson"
    with pytest.raises(ValueError, match="no xyz"):
        simulate_on_sample(sample, np.random.default_rng(0), cutpaste, modality="xyz")
    with pytest.raises(ValueError, match="modality"):
        simulate_on_sample(sample, np.random.default_rng(0), cutpaste, modality="audio")


def test_draem_reads_textures_from_any_image_folder_and_from_dtd(tmp_path, monkeypatch):
    from PIL import Image

    from uiad_lite.simulation.texture import pick_texture, texture_files

    # DTD's layout: dtd/images/<class>/<name>.jpg; one flat colour per file, so each pick is identifiable
    colours = {"banded": (250, 10, 10), "dotted": (10, 250, 10)}
    for name, colour in colours.items():
        (tmp_path / "dtd" / "images" / name).mkdir(parents=True)
        Image.fromarray(np.full((40, 50, 3), colour, np.uint8)).save(
            tmp_path / "dtd" / "images" / name / "a.png"
        )
    (tmp_path / "dtd" / "images" / "labels.txt").write_text("not an image")
    folder = tmp_path / "dtd" / "images"
    assert [p.parent.name for p in texture_files(str(folder))] == ["banded", "dotted"]
    picked = {tuple(pick_texture(folder, (16, 24), np.random.default_rng(seed))[0, 0]) for seed in range(20)}
    assert picked == set(colours.values())  # every file is used, resized to the requested shape
    monkeypatch.setenv("UIAD_DATA", str(tmp_path))
    assert pick_texture("dtd", (16, 24), np.random.default_rng(0)).shape == (16, 24, 3)
    image, _ = object_image()
    altered, mask = draem_perlin(image, np.random.default_rng(0), texture_source=str(folder), threshold=0.2)
    np.testing.assert_array_equal(altered[~mask], image[~mask])


def test_texture_folder_errors_say_what_is_missing(tmp_path, monkeypatch):
    from uiad_lite.simulation.texture import pick_texture

    with pytest.raises(FileNotFoundError, match="texture folder not found"):
        pick_texture(tmp_path / "nope", (8, 8), np.random.default_rng(0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files .* under the texture folder"):
        pick_texture(tmp_path / "empty", (8, 8), np.random.default_rng(0))
    monkeypatch.setenv("UIAD_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"DTD not found .*dtd/images.*pass any folder of images"):
        pick_texture("dtd", (8, 8), np.random.default_rng(0))


def test_nsa_defect_grows_with_the_gamma_offset():
    image, other = object_image()[0], other_normal_image()
    mean_area = {
        offset: np.mean([nsa_poisson(image, other, np.random.default_rng(seed), num_patches=1,
                                     gamma=(2.0, 0.02, offset), resize_bounds=(1.0, 1.0))[1].sum()
                         for seed in range(12)])
        for offset in (0.06, 0.12, 0.25)
    }
    assert mean_area[0.06] < mean_area[0.12] < mean_area[0.25], mean_area
