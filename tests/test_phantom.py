"""The synthetic chest phantom: determinism, and records that match what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from medvlp_bench_plugins.synthetic import (
    DEFAULT_PREVALENCE,
    FINDINGS,
    render_frontal,
    render_study,
    sample_case,
    sample_study,
)
from medvlp_bench_plugins.synthetic.findings.foreign_object import ELLIPSE, POLYGON, RECTANGLE, ForeignObject
from medvlp_bench_plugins.synthetic.findings.pneumothorax import Pneumothorax
from medvlp_bench_plugins.synthetic.opacity import Opacity

SIZE = 128


def _twin(case, keep=lambda lesion: False):
    """The same radiograph rendered without the lesions ``keep`` rejects (same anatomy, texture and noise)."""
    lesions = [lesion for lesion in case.study.lesions if keep(lesion)]
    return render_frontal(case.study.anatomy, lesions, case.image.shape[0]).image.astype(np.float32)


def test_same_seed_same_case_and_different_seed_different_case():
    first = sample_case(np.random.default_rng(3), size=SIZE)
    again = sample_case(np.random.default_rng(3), size=SIZE)
    other = sample_case(np.random.default_rng(4), size=SIZE)
    assert first.image.dtype == np.uint8 and first.image.shape == (SIZE, SIZE)
    assert np.array_equal(first.image, again.image)
    assert first.findings == again.findings
    assert first.records.keys() == again.records.keys()
    for name, record in first.records.items():
        assert np.array_equal(record, again.records[name]) if name == "pneumothorax" else record == again.records[name]
    assert not np.array_equal(first.image, other.image)


def test_rendering_a_study_twice_is_identical():
    study = sample_study(np.random.default_rng(5), findings=["pneumothorax", "lung_opacity", "foreign_object"])
    first, second = render_study(study, size=SIZE), render_study(study, size=SIZE)
    assert np.array_equal(first.image, second.image)
    assert np.array_equal(first.records["pneumothorax"], second.records["pneumothorax"])


def test_findings_are_sampled_at_their_prevalence_and_only_known_names_are_accepted():
    rng = np.random.default_rng(0)
    studies = [sample_study(rng) for _ in range(400)]
    for name in ("effusion", "cardiomegaly", "atelectasis"):
        rate = np.mean([name in study.findings for study in studies])
        assert abs(rate - DEFAULT_PREVALENCE[name]) < 0.07
    assert {name for study in studies for name in study.findings} <= set(FINDINGS)
    with pytest.raises(ValueError):
        sample_study(rng, findings=["dragon"])


def test_opacity_boxes_lie_in_the_image_over_the_drawn_opacity():
    rng = np.random.default_rng(1)
    for _ in range(12):
        case = sample_case(rng, size=SIZE, findings=["lung_opacity"])
        assert 1 <= len(case.records["lung_opacity"]) <= 3
        assert case.findings["lung_opacity"].laterality in ("left", "right", "bilateral")
        clean = _twin(case, keep=lambda lesion: not (isinstance(lesion, Opacity) and lesion.recorded_as))
        for x, y, w, h in case.records["lung_opacity"]:
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= SIZE and y + h <= SIZE
            region = (slice(int(y), int(y + h)), slice(int(x), int(x + w)))
            assert case.image[region].astype(np.float32).mean() > clean[region].mean() + 2.0


def test_opacity_lies_in_the_recorded_lung():
    rng = np.random.default_rng(2)
    for _ in range(10):
        case = sample_case(rng, size=SIZE, findings=["lung_opacity"])
        if case.findings["lung_opacity"].laterality == "bilateral":
            continue
        centre = case.study.anatomy.center_x * SIZE
        x, _, w, _ = case.records["lung_opacity"][0]
        # the patient's right lung is on the image left
        assert (x + w / 2 < centre) == (case.findings["lung_opacity"].laterality == "right")


def test_pneumothorax_mask_marks_a_lucent_rim_and_is_absent_without_pneumothorax():
    rng = np.random.default_rng(6)
    for _ in range(6):
        case = sample_case(rng, size=SIZE, findings=["pneumothorax"])
        mask = case.records["pneumothorax"]
        assert mask is not None and mask.dtype == bool and mask.shape == (SIZE, SIZE)
        assert mask.sum() > 20
        clean = _twin(case, keep=lambda lesion: not isinstance(lesion, Pneumothorax))
        assert case.image[mask].astype(np.float32).mean() < clean[mask].mean() - 3.0
        side = case.findings["pneumothorax"].laterality
        columns = np.nonzero(mask.any(axis=0))[0]
        assert (columns.mean() < case.study.anatomy.center_x * SIZE) == (side == "right")
    for _ in range(6):
        case = sample_case(rng, size=SIZE, findings=["effusion", "lung_opacity"])
        assert "pneumothorax" not in case.records


def test_foreign_objects_are_recorded_by_shape_and_outline_over_bright_pixels():
    rng = np.random.default_rng(7)
    kinds = set()
    for _ in range(15):
        case = sample_case(rng, size=SIZE, findings=["foreign_object"])
        assert 1 <= len(case.records["foreign_object"]) <= 3
        clean = _twin(case, keep=lambda lesion: not isinstance(lesion, ForeignObject))
        for kind, points in case.records["foreign_object"]:
            kinds.add(kind)
            assert kind in (RECTANGLE, ELLIPSE, POLYGON)
            assert all(0 <= p <= SIZE for p in points)
            if kind == POLYGON:
                assert len(points) >= 6 and len(points) % 2 == 0
            else:
                assert len(points) == 4 and points[0] < points[2] and points[1] < points[3]
            xs, ys = points[0::2], points[1::2]
            cx, cy = int(sum(xs) / len(xs)), int(sum(ys) / len(ys))
            written = " ".join(f"{p:g}" for p in points)
            assert [float(v) for v in written.split()] == points
            if kind != POLYGON:
                assert case.image[cy, cx] > clean[cy, cx] + 20
    assert kinds == {RECTANGLE, ELLIPSE, POLYGON}


def test_cardiomegaly_enlarges_the_cardiothoracic_ratio():
    rng = np.random.default_rng(8)
    enlarged = [sample_study(rng, findings=["cardiomegaly"], view="PA").anatomy.ctr for _ in range(30)]
    normal = [sample_study(rng, findings=[], view="PA").anatomy.ctr for _ in range(30)]
    assert min(enlarged) >= 0.5 and max(normal) <= 0.52
    assert np.mean(enlarged) > np.mean(normal) + 0.1


def test_effusion_brightens_the_costophrenic_angle():
    rng = np.random.default_rng(9)
    for _ in range(6):
        case = sample_case(rng, size=SIZE, findings=["effusion"])
        clean = _twin(case)
        brightened = np.nonzero(case.image.astype(np.float32) - clean > 5)
        assert len(brightened[0]) > 20
        assert brightened[0].min() > case.study.anatomy.level_y(0.5) * SIZE


def test_ap_views_magnify_the_heart():
    rng = np.random.default_rng(10)
    ap = [sample_study(rng, findings=[], view="AP").anatomy.ctr for _ in range(200)]
    pa = [sample_study(rng, findings=[], view="PA").anatomy.ctr for _ in range(200)]
    assert np.mean(ap) > 1.03 * np.mean(pa)


def test_lateral_view_shows_the_same_study_without_records():
    study = sample_study(np.random.default_rng(10), findings=["effusion", "lung_opacity"], view="PA")
    lateral = render_study(study, lateral=True, size=SIZE)
    frontal = render_study(study, size=SIZE)
    assert lateral.view == "LATERAL" and frontal.view == "PA" and frontal.frontal and not lateral.frontal
    assert lateral.findings == frontal.findings
    assert lateral.image.shape == (SIZE, SIZE) and lateral.image.dtype == np.uint8
    assert lateral.records == {}
    assert np.abs(lateral.image.astype(int) - frontal.image.astype(int)).mean() > 10


def test_lungs_are_darker_than_the_mediastinum():
    rng = np.random.default_rng(11)
    for _ in range(5):
        case = sample_case(rng, size=SIZE, findings=[])
        anatomy = case.study.anatomy
        row = int(anatomy.level_y(0.4) * SIZE)
        lung = int(anatomy.side_x("right", 0.5) * SIZE)
        middle = int(anatomy.center_x * SIZE)
        patch = lambda c: case.image[row - 3:row + 4, c - 3:c + 4].mean()
        assert patch(lung) + 40 < patch(middle)
