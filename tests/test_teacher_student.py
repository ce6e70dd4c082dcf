"""STFPM, RD4AD and EfficientAD: their building blocks, a known case, and bad input."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from uiad_lite import methods
from uiad_lite.data import load
from uiad_lite.data.sample import Sample
from uiad_lite.methods.base import NotFittedError
from uiad_lite.methods.teacher_student import efficientad as efficientad_module
from uiad_lite.methods.teacher_student import rd4ad as rd4ad_module
from uiad_lite.methods.teacher_student import stfpm as stfpm_module
from uiad_lite.methods.teacher_student.efficientad import (
    EfficientAD,
    hard_feature_loss,
    quantile_normalise,
    receptive_field,
    small_pdn,
)
from uiad_lite.methods.teacher_student.rd4ad import RD4AD
from uiad_lite.methods.teacher_student.stfpm import STFPM, stage_distances, stfpm_loss

SIZE = 64
TINY = dict(device="cpu", progress=False, seed=0)


def stripes(count: int, size: int = SIZE, seed: int = 0) -> list[np.ndarray]:
    """Vertical sinusoidal stripes (period 8 px) with a random phase and a little noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(size)
    images = []
    for _ in range(count):
        row = 0.5 + 0.4 * np.sin(2 * np.pi * (x + rng.uniform(0, 8)) / 8)
        image = np.repeat(np.repeat(row[None, :, None], size, 0), 3, 2) + rng.normal(0, 0.02, (size, size, 3))
        images.append((np.clip(image, 0, 1) * 255).astype(np.uint8))
    return images


def as_samples(images: list[np.ndarray], split: str = "train") -> list[Sample]:
    return [Sample("stripes", split, image=image, mask=np.zeros(image.shape[:2], bool)) for image in images]


def scratched(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A dark horizontal scratch across the stripes (rows 28-35, columns 12-51)."""
    image, mask = image.copy(), np.zeros(image.shape[:2], bool)
    mask[28:36, 12:52] = True
    image[mask] = (40, 40, 200)
    return image, mask


@pytest.fixture(scope="module")
def stripes_stfpm() -> STFPM:
    return STFPM(image_size=SIZE, epochs=15, batch_size=8, **TINY).fit(as_samples(stripes(16)))


def test_stfpm_student_disagrees_on_a_scratch(stripes_stfpm: STFPM) -> None:
    normal = as_samples(stripes(4, seed=1), "test")
    defect_image, mask = scratched(stripes(1, seed=2)[0])
    defect = Sample("stripes", "test", label=1, image=defect_image, mask=mask)
    prediction = stripes_stfpm.predict([*normal, defect])
    assert prediction.maps.shape == (5, SIZE, SIZE)
    assert prediction.scores[-1] > prediction.scores[:-1].max()  # the scratched image ranks first
    defect_map = prediction.maps[-1]
    assert defect_map[mask].mean() > 2 * defect_map[~mask].mean()  # and the map points at the scratch
    assert defect_map[mask].mean() > 3 * prediction.maps[:-1].mean()
    assert stripes_stfpm.loss_history_[-1] < stripes_stfpm.loss_history_[0]


def test_stfpm_loss_is_the_cosine_distance() -> None:
    torch.manual_seed(0)
    teacher, student = [torch.randn(2, 5, 3, 4)], [torch.randn(2, 5, 3, 4)]
    cosine = torch.nn.functional.cosine_similarity(teacher[0], student[0], dim=1)
    torch.testing.assert_close(stage_distances(teacher, student)[0], 1 - cosine)
    torch.testing.assert_close(stfpm_loss(teacher, student), (1 - cosine).sum() / 12)


def test_stfpm_combines_stages_by_product_or_sum(stripes_stfpm: STFPM) -> None:
    stages = [torch.full((1, 2, 2), 0.5), torch.full((1, 1, 1), 0.2)]
    assert torch.allclose(stripes_stfpm.combined_map(stages), torch.tensor(0.1))
    stripes_stfpm.combine = "sum"
    try:
        assert torch.allclose(stripes_stfpm.combined_map(stages), torch.tensor(0.7))
    finally:
        stripes_stfpm.combine = "product"


@pytest.mark.parametrize("size", [64, 80])
def test_rd4ad_ocbe_and_decoder_mirror_the_teacher(size: int) -> None:
    detector = RD4AD(image_size=size, epochs=1, ocbe_blocks=2, decoder_blocks=1, **TINY)
    ocbe, decoder = detector.build()
    teacher = detector.teacher(torch.rand(2, 3, size, size))
    embedding = ocbe(teacher)
    deepest = teacher[-1].shape
    assert embedding.shape == (2, 2 * deepest[1], (deepest[2] + 1) // 2, (deepest[3] + 1) // 2)
    rebuilt = decoder(embedding, [tuple(t.shape[-2:]) for t in teacher])
    assert [r.shape for r in rebuilt] == [t.shape for t in teacher]
    assert len(decoder.stages) == len(detector.teacher.info.channels) == 3


def test_rd4ad_decoder_reaches_a_signed_teacher(monkeypatch: pytest.MonkeyPatch) -> None:
    """EfficientNet stages end in a linear projection (negative values); a decoder ending in ReLU, as
    released for ResNets, cannot reach them. fit() must notice and train a decoder with signed outputs,
    whose loss on the same images ends well below the ReLU decoder's."""
    train = as_samples(stripes(16))
    signed = RD4AD(image_size=SIZE, epochs=12, batch_size=8, ocbe_blocks=1, decoder_blocks=1, **TINY)
    signed.fit(train)
    teacher = signed.teacher(signed._images(train[:4]))
    assert any(bool((t < 0).any()) for t in teacher)
    with torch.no_grad():
        assert all(bool((s < 0).any()) for s in signed._student(teacher))
    relu = RD4AD(image_size=SIZE, epochs=12, batch_size=8, ocbe_blocks=1, decoder_blocks=1, **TINY)
    build = relu.build
    monkeypatch.setattr(relu, "build", lambda signed=False: build(signed=False))
    relu.fit(train)
    with torch.no_grad():
        assert all(bool((s >= 0).all()) for s in relu._student(teacher))
    assert signed.loss_history_[-1] < 0.7 * relu.loss_history_[-1]


def test_rd4ad_loss_flattens_each_stage() -> None:
    torch.manual_seed(0)
    t, s = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    expected = np.mean(
        [
            1 - np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
            for a, b in zip(t.reshape(3, -1).numpy(), s.reshape(3, -1).numpy(), strict=True)
        ]
    )
    assert float(rd4ad_module.reverse_distillation_loss([t], [s])) == pytest.approx(expected, rel=1e-5)


def test_pdn_receptive_field_is_33_pixels() -> None:
    pdn = small_pdn(8, width=4)
    assert receptive_field(pdn) == 33
    with torch.no_grad():  # positive weights and inputs: every ReLU passes, so the gradient shows the field
        for parameter in pdn.parameters():
            parameter.abs_().add_(0.01)
    image = torch.rand(1, 3, 80, 80, requires_grad=True)
    output = pdn(image)
    output[0, :, output.shape[2] // 2, output.shape[3] // 2].sum().backward()
    rows, cols = np.nonzero(image.grad.abs().sum(1)[0].numpy())
    assert rows.max() - rows.min() + 1 == 33 and cols.max() - cols.min() + 1 == 33


def field_columns(pdn: torch.nn.Sequential, size: int) -> list[tuple[int, int]]:
    """First and last input column each output column of the middle row sees (autograd, positive weights)."""
    with torch.no_grad():
        for parameter in pdn.parameters():
            parameter.abs_().add_(0.01)
    image = torch.rand(1, 3, size, size, requires_grad=True)
    output = pdn(image)
    spans = []
    for column in range(output.shape[3]):
        row = output[0, :, output.shape[2] // 2, column].sum()
        (grad,) = torch.autograd.grad(row, image, retain_graph=True)
        cols = np.nonzero(grad.abs().sum((0, 1, 2)).numpy())[0]
        spans.append((int(cols.min()), int(cols.max())))
    return spans


@pytest.mark.parametrize("size", [64, 128])
def test_teacher_pdn_is_distilled_on_the_grid_of_its_targets(size: int, monkeypatch) -> None:
    """The targets are the backbone's maps resized (align_corners=False) to the distilled PDN's grid g, so
    target cell j is centred on pixel (j + 0.5) size / g - 0.5. The padded PDN (released pretraining) sees
    a patch centred there; the unpadded one, whose grid starts 16 px in, would be asked for features
    of a patch up to 17 px away from the one it sees (the bug this replaces)."""
    for padding, worst in ((True, 2.0), (False, 12.0)):
        spans = field_columns(small_pdn(4, width=4, padding=padding), size)
        grid = len(spans)
        offsets = [
            abs((first + last) / 2 - ((j + 0.5) * size / grid - 0.5))
            for j, (first, last) in enumerate(spans)
            if last - first + 1 == 33  # fields that lie wholly inside the image
        ]
        assert (max(offsets) <= worst) if padding else (max(offsets) >= worst), (padding, max(offsets))
    built = []  # and fit distils the padded PDN, then predicts with the unpadded one

    def recording(*args, **kwargs):
        built.append(kwargs.get("padding", False))
        return small_pdn(*args, **kwargs)

    monkeypatch.setattr(efficientad_module, "small_pdn", recording)
    EfficientAD(image_size=SIZE, epochs=1, teacher_epochs=1, pdn_width=4, ae_width=8, **TINY).fit(
        as_samples(stripes(3))
    )
    assert built[:2] == [True, False]


def test_paper_preset_geometry_is_the_released_one() -> None:
    """At the paper preset's 256 px the PDN's output is 56 x 56 (paper Sec. 3.1); padded, 64 x 64, the grid
    of the backbone's layer2 (stride 8) on the image at backbone_scale x 256 = 512 px (released)."""
    settings = methods.preset_settings("efficientad", "paper")
    size = settings["image_size"]
    default_scale = inspect.signature(EfficientAD).parameters["backbone_scale"].default
    scale = settings.get("backbone_scale", default_scale)
    with torch.no_grad():
        unpadded = small_pdn(4, width=4)(torch.zeros(1, 3, size, size)).shape[-1]
        padded = small_pdn(4, width=4, padding=True)(torch.zeros(1, 3, size, size)).shape[-1]
    assert (size, unpadded) == (256, 56)
    assert padded == scale * size // 8 == 64


def test_quantile_normalisation_maps_q_a_to_0_and_q_b_to_0_1() -> None:
    values = torch.rand(10_000) ** 2
    q_a, q_b = (float(torch.quantile(values, q)) for q in (0.9, 0.995))
    normalised = quantile_normalise(values, q_a, q_b)
    assert float(torch.quantile(normalised, 0.9)) == pytest.approx(0.0, abs=1e-6)
    assert float(torch.quantile(normalised, 0.995)) == pytest.approx(0.1, abs=1e-6)


def test_hard_feature_loss_keeps_the_top_quantile() -> None:
    teacher, student = torch.zeros(1, 1, 10, 100), torch.arange(1000.0).reshape(1, 1, 10, 100).sqrt()
    assert float(hard_feature_loss(teacher, student, 0.99)) == pytest.approx(
        np.mean(np.arange(990, 1000)), 0.01
    )


def test_efficientad_student_disagrees_on_a_scratch() -> None:
    detector = EfficientAD(
        image_size=SIZE, epochs=10, teacher_epochs=10, batch_size=4, teacher_batch_size=4, pdn_width=8,
        ae_width=16, learning_rate=3e-3, teacher_learning_rate=1e-3, hard_quantile=0.9, out_channels=32,
        backbone_scale=1, **TINY,
    ).fit(as_samples(stripes(16)))  # fmt: skip
    assert detector.teacher_loss_history_[-1] < 0.8 * detector.teacher_loss_history_[0]
    defect_image, mask = scratched(stripes(1, seed=2)[0])
    defect = Sample("stripes", "test", label=1, image=defect_image, mask=mask)
    prediction = detector.predict([*as_samples(stripes(4, seed=1), "test"), defect])
    assert prediction.scores[-1] > prediction.scores[:-1].max()
    defect_map = prediction.maps[-1]
    assert defect_map[mask].mean() > 3 * defect_map[~mask].mean() > 0


def test_efficientad_normalises_held_back_maps() -> None:
    images = stripes(10)
    detector = EfficientAD(
        image_size=SIZE,
        epochs=2,
        teacher_epochs=2,
        batch_size=4,
        pdn_width=8,
        ae_width=16,
        learning_rate=1e-3,
        teacher_learning_rate=1e-3,
        validation_fraction=0.2,
        **TINY,
    )
    detector.fit(as_samples(images))
    held = [as_samples(images)[i] for i in detector.validation_indices_]
    assert len(held) == 2
    for name, branch in detector.branch_maps(held).items():
        flat = branch.flatten()
        assert float(torch.quantile(flat, 0.9)) == pytest.approx(0.0, abs=1e-5), name
        assert float(torch.quantile(flat, 0.995)) == pytest.approx(0.1, abs=1e-5), name
    prediction = detector.predict(as_samples(stripes(2, size=48, seed=3), "test"))  # another size
    assert prediction.maps.shape == (2, 48, 48) and np.isfinite(prediction.scores).all()


@pytest.mark.parametrize(
    ("cls", "module", "loss_name", "options"),
    [
        (STFPM, stfpm_module, "stfpm_loss", {}),
        (RD4AD, rd4ad_module, "reverse_distillation_loss", {}),
        (
            EfficientAD,
            efficientad_module,
            "hard_feature_loss",
            dict(pdn_width=4, ae_width=8, teacher_epochs=1),
        ),
    ],
)
def test_nan_loss_names_the_epoch(cls, module, loss_name, options, monkeypatch) -> None:
    original, calls = getattr(module, loss_name), []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = original(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 3 else loss  # 2 batches per epoch: NaN in epoch 2

    monkeypatch.setattr(module, loss_name, poisoned)
    detector = cls(image_size=SIZE, epochs=3, batch_size=4, **options, **TINY)
    with pytest.raises(FloatingPointError, match=r"epoch 2\b"):
        detector.fit(as_samples(stripes(9 if cls is EfficientAD else 8)))


@pytest.mark.parametrize("name", ["stfpm", "rd4ad", "efficientad"])
def test_registry_presets_build_and_refuse_predict_before_fit(name: str) -> None:
    for preset in ("quick",):
        detector = methods.create(name, preset=preset, **TINY)
        with pytest.raises(NotFittedError, match="before fit"):
            detector.predict(as_samples(stripes(1)))
    assert set(methods.preset_settings(name, "paper")) >= {"backbone", "image_size", "epochs"}


@pytest.mark.parametrize("name", ["stfpm", "rd4ad", "efficientad"])
def test_seeded_fits_repeat_and_the_seed_matters(name: str) -> None:
    """Two fits with one seed give the same maps to the bit (CPU); another seed gives other maps, so the
    seed really drives the student's initialisation and the batch order."""
    train, test = as_samples(stripes(8)), as_samples(stripes(2, seed=5), "test")
    options = dict(image_size=SIZE, epochs=2, batch_size=4, device="cpu", progress=False)
    if name == "efficientad":
        options.update(teacher_epochs=1, teacher_batch_size=4, pdn_width=4, ae_width=8, backbone_scale=1)
    maps = [
        methods.create(name, preset="quick", seed=seed, **options).fit(train).predict(test).maps
        for seed in (0, 0, 1)
    ]
    assert np.array_equal(maps[0], maps[1])
    assert not np.allclose(maps[0], maps[2])


def test_training_set_smaller_than_a_batch() -> None:
    detector = STFPM(image_size=SIZE, epochs=1, batch_size=32, **TINY).fit(as_samples(stripes(3)))
    assert detector.batch_size_ == 3
    with pytest.raises(ValueError, match="at least 2 training images"):
        EfficientAD(image_size=SIZE, epochs=1, teacher_epochs=1, pdn_width=4, **TINY).fit(
            as_samples(stripes(1))
        )
    with pytest.raises(ValueError, match="at least one sample"):
        RD4AD(image_size=SIZE, epochs=1, **TINY).fit([])
    with pytest.raises(ValueError, match="teacher_batch_size and backbone_scale"):
        EfficientAD(image_size=SIZE, teacher_batch_size=0, **TINY)


def test_end_to_end_on_tiny_synthetic_plate() -> None:
    split = load("synthetic", category="plate", size="tiny")
    for name in ("stfpm", "rd4ad", "efficientad"):
        detector = methods.create(name, preset="quick", image_size=SIZE, epochs=1, **TINY)
        prediction = detector.fit(split.train).predict(split.test)
        assert prediction.maps.shape == (len(split.test), *split.test[0].mask.shape)
        assert np.isfinite(prediction.maps).all()


def test_chapter_figures() -> None:
    import pandas as pd

    from uiad_lite.plots.teacher_student import latency_accuracy, map_panels, training_curves

    curves = training_curves({"STFPM": {"a": [1.0, 0.5], "b": [2.0, 1.0]}, "RD4AD": {"a": [1.0, 0.9]}})
    assert len(curves.data) == 3 and list(curves.data[0].y) == [1.0, 0.5]
    samples = as_samples(stripes(2))
    panels = map_panels(samples, {"stage": np.random.rand(2, 4, 4), "map": np.random.rand(2, SIZE, SIZE)})
    assert len(panels.data) == 2 * 4  # image, ground truth and two maps per row
    assert panels.data[2].z.shape == (SIZE, SIZE)  # a 4×4 stage shown at the image's size
    with pytest.raises(ValueError, match="2 samples"):
        map_panels(samples, {"stage": np.random.rand(3, 4, 4)})
    table = pd.DataFrame({"method": ["A", "A", "B"], "category": ["x", "mean", "mean"],
                          "i_auroc": [0.9, 0.9, 0.8], "predict_ms_per_image": [3.0, 3.0, 30.0]})  # fmt: skip
    assert len(latency_accuracy(table).data) == 4
