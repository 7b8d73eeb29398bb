"""Detection protocol: box mapping into the letterbox, hyper-parameters, levels, and end-to-end runs on a tiny
synthetic table (bright rectangles) with a counting encoder: the rerun reads the feature cache (no forward)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from coco_reference import case_from_outputs, cocoeval_stats
from PIL import Image
from torch import nn

from medvlp_bench.api import ImageEncoder, MedvlpError, ProtocolInputs, SplitTables, TaskSpec, letterbox_geometry
from medvlp_bench_plugins.protocols.detection import (
    DETECTION_OPTIONS,
    detection_levels,
    head_width,
    medvlp_bench_protocols,
    original_boxes,
    prepared_boxes,
    at_training_fraction,
    run,
)
from medvlp_bench_plugins.protocols.yolo_detector import HeadSettings, YoloDetector

WIDTH, HEIGHT = 80, 64  # original images: letterboxed to 64 x 64 with 6 px bands above and below


class TinyEncoder(ImageEncoder):
    """Four conv-BN-ReLU stages at strides 4 / 8 / 16 / 32 on a 64 px input; counts its forward passes."""

    input_size = 64
    map_channels, map_strides = (4, 8, 8, 16), (4, 8, 16, 32)

    def __init__(self):
        super().__init__()
        widths = (3, *self.map_channels)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 4 if i == 0 else 3, stride=4 if i == 0 else 2, padding=0 if i == 0 else 1),
                          nn.BatchNorm2d(b), nn.ReLU())
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))
        )
        self.calls = 0

    def feature_maps(self, x):
        self.calls += 1
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


def _table(folder, count, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(count):
        image = rng.integers(0, 40, size=(HEIGHT, WIDTH), dtype=np.uint8)
        w, h = int(rng.integers(12, 30)), int(rng.integers(12, 30))
        x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
        image[y : y + h, x : x + w] = 230
        path = folder / f"img{seed}_{n}.png"
        Image.fromarray(image).save(path)
        rows.append({"sample_id": path.stem, "image_path": str(path), "source_file": "labels.csv", "source_row": n,
                     "boxes": [[float(x), float(y), float(w), float(h)]]})
    return pd.DataFrame(rows)


def _task():
    return TaskSpec(name="toy_det", dataset="toy", protocol="detection", description="", load_splits=lambda f: None,
                    label_names=("thing",), target="boxes", primary_metric="map")


def _inputs(tmp_path, encoder, splits, hparams):
    hp = {"max_epochs": 2, "patience": 5, "batch_size": 6, "head_width": 16, **hparams}
    work = tmp_path / f"work{len(list(tmp_path.glob('work*')))}"
    return ProtocolInputs(task=_task(), encoder=encoder, encoder_key="tiny-weights", splits=splits, seed=0,
                          hparams=hp, cache_dir=tmp_path / "cache", work_dir=work)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: on a shared 2-core machine a second intra-op thread only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    return SplitTables(_table(folder, 12, 0), _table(folder, 6, 1), _table(folder, 6, 2))


def test_boxes_follow_the_letterbox():
    table = pd.DataFrame({"boxes": [[[10.0, 20.0, 30.0, 16.0], [0.0, 0.0, 80.0, 64.0]], []]})
    sizes = np.array([[HEIGHT, WIDTH], [HEIGHT, WIDTH]])
    boxes, valid = prepared_boxes(table, sizes, 64)
    scale, top, left = letterbox_geometry(HEIGHT, WIDTH, 64)
    assert (scale, top, left) == (0.8, 6, 0)
    assert np.allclose(boxes[0, 0], [8.0, 22.0, 32.0, 34.8])
    assert np.allclose(boxes[0, 1], [0.0, 6.0, 64.0, 57.2])
    assert valid.tolist() == [[True, True], [False, False]]


def test_original_boxes_undo_the_letterbox():
    table = pd.DataFrame({"boxes": [[[10.0, 20.0, 30.0, 16.0]], [[1.5, 2.0, 40.0, 50.0], [60.0, 0.0, 20.0, 64.0]]]})
    sizes = np.array([[HEIGHT, WIDTH], [128, 64]])  # a wide and a tall image
    boxes, valid = prepared_boxes(table, sizes, 64)
    index = np.nonzero(valid)[0]
    restored = original_boxes(boxes[valid], index, sizes, 64)
    expected = [[10, 20, 40, 36], [1.5, 2, 41.5, 52], [60, 0, 80, 64]]
    assert np.allclose(restored, expected, atol=1e-4)  # float32 prepared boxes


def test_hparams_at_one_percent_and_levels():
    defaults = {option.name: option.default for option in DETECTION_OPTIONS}
    assert at_training_fraction(defaults, 0.01)["lr"] == 2e-4
    assert at_training_fraction(defaults, 0.01)["batch_size"] == 8
    assert at_training_fraction({**defaults, "lr_at_1pct": 2.5e-4}, 0.01)["lr"] == 2.5e-4
    assert at_training_fraction(defaults, 0.1)["lr"] == 5e-4 and at_training_fraction(defaults, 1.0)["batch_size"] == 16
    assert detection_levels(TinyEncoder()) == (8, 16, 32)
    vit = ImageEncoder()
    vit.map_strides = (16,)
    assert detection_levels(vit) == (8, 16, 32)
    assert [spec.name for spec in medvlp_bench_protocols()] == ["detection"]


def test_auto_head_width_is_a_quarter_of_the_deepest_map():
    assert head_width("auto", (512, 1024, 2048)) == 512  # ResNet-50: the reference's YOLOv3 head
    assert head_width("auto", (128, 256, 512)) == 128  # ResNet-18
    assert head_width("auto", (768, 768, 768)) == 192  # ViT-B/16 resampled to three levels
    assert head_width("auto", (4, 8, 16)) == 8  # never below 8
    assert head_width(64, (128, 256, 512)) == 64
    for bad in (0, -4, "wide", 1.5, True):
        with pytest.raises(MedvlpError, match="head_width"):
            head_width(bad, (128, 256, 512))


def test_run_twice_second_reads_the_cache(tmp_path, splits):
    torch.manual_seed(0)
    encoder = TinyEncoder()
    result = run(_inputs(tmp_path, encoder, splits, {}))
    assert (result.n_train, result.n_val, result.n_test) == (12, 6, 6)
    assert set(result.metrics) == {"map", "map_reference", "map_50"}
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())
    assert result.details["frozen_bn"] and result.details["feature_cache"]
    assert result.details["levels"] == [8, 16, 32] and result.details["level_channels"] == [8, 8, 16]
    forwards = encoder.calls
    again = run(_inputs(tmp_path, encoder, splits, {}))
    assert encoder.calls == forwards
    assert again.metrics == result.metrics
    assert all(np.array_equal(again.outputs[name], value) for name, value in result.outputs.items())


def test_outputs_are_in_original_pixels_and_reproduce_the_metrics_with_pycocotools(tmp_path, splits):
    torch.manual_seed(0)
    result = run(_inputs(tmp_path, TinyEncoder(), splits, {"max_epochs": 3}))
    out = result.outputs
    assert str(out["kind"]) == "detection"
    assert out["sample_id"].tolist() == out["patient_id"].tolist() == splits.test["sample_id"].tolist()
    truth = [[x, y, x + w, y + h] for boxes in splits.test["boxes"] for x, y, w, h in boxes]
    assert out["true_boxes"].tolist() == truth and out["true_index"].tolist() == list(range(6))
    assert len(out["pred_boxes"]) > 0 and out["pred_boxes"].dtype == np.float64
    assert out["pred_scores"].min() >= float(out["score_threshold"]) == 0.05
    assert out["iou_thresholds"].tolist() == [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75]
    stats = cocoeval_stats(case_from_outputs(out))
    assert result.metrics["map"] == pytest.approx(stats[0], abs=1e-6)
    assert result.metrics["map_50"] == pytest.approx(stats[1], abs=1e-6)
    # boxes in original pixels: a prediction from the letterboxed input reaches x up to about WIDTH, not 64
    assert out["pred_boxes"][:, 2].max() > 64


def test_reference_bn_drift_runs_on_the_fly_and_leaves_the_encoder_alone(tmp_path, splits):
    torch.manual_seed(0)
    encoder = TinyEncoder()
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    result = run(_inputs(tmp_path, encoder, splits, {"reference_bn_drift": True, "max_epochs": 1}))
    assert not result.details["frozen_bn"] and not result.details["feature_cache"]
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())
    assert all(torch.equal(before[name], value) for name, value in encoder.state_dict().items())


def test_encoder_stays_in_eval_mode_unless_bn_drift():
    settings = HeadSettings(image_size=64, levels=(8, 16, 32), anchors=[[[1.0, 1.0]] * 3] * 3, in_channels=(8, 8, 16),
                            num_classes=1, width=16, lr=1e-3, weight_decay=0.0, ignore_threshold=0.5,
                            coord_weight=2.5, noobj_weight=0.5, conf_threshold=0.5, nms_threshold=0.5)
    frozen = YoloDetector(settings, encoder=TinyEncoder()).train()
    assert frozen.head.training and not frozen.encoder.training
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    drifting = YoloDetector(settings, encoder=TinyEncoder(), bn_drift=True).train()
    assert drifting.encoder.training
