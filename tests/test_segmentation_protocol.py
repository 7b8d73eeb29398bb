"""Segmentation protocol: U-Net weight loading and freezing, the generic decoder, and end-to-end runs whose reruns
read the frozen maps from the cache instead of running the encoder."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from medvlp_bench.api import DataError, ImageEncoder, MedvlpError, ProtocolInputs, SplitTables, TaskSpec, prepare_images
from medvlp_bench.protocols.feature_cache import encoder_fingerprint
from medvlp_bench_plugins.encoders.torchvision_resnet import ResNetEncoder
from medvlp_bench_plugins.protocols.segmentation import medvlp_bench_protocols, run
from medvlp_bench_plugins.protocols.segmentation_data import (
    SegmentationSamples,
    letterboxed_masks,
    reference_augmentation,
)
from medvlp_bench_plugins.protocols.segmentation_models import (
    GenericSegmenter,
    LinearSegmenter,
    ProgressiveUpsamplingDecoder,
    UnetSegmenter,
    build_segmenter,
)

FAST = {"max_epochs": 2, "patience": 5, "batch_size": 4, "lr": 1e-3}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small convolutions on a shared 2-core machine run many times faster on one thread than on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyCNN(ImageEncoder):
    """Three stride-2 conv stages (8/16/32 channels); counts ``feature_maps`` calls across copies."""

    calls = 0

    def __init__(self):
        super().__init__()
        self.input_size, self.arch = 64, "tiny_cnn"
        self.map_channels, self.map_strides, self.global_dim = (8, 16, 32), (2, 4, 8), 32
        widths = (3, 8, 16, 32)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU())
            for a, b in zip(widths, widths[1:])
        )

    def feature_maps(self, x):
        TinyCNN.calls += 1
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def global_features(self, x):
        return self.feature_maps(x)[-1].mean((2, 3))


def _blob_splits(folder) -> SplitTables:
    """24 grey 64x80 PNGs, each with a bright ellipse (every fourth image none) and its mask PNG."""
    rng = np.random.default_rng(0)
    rows = []
    yy, xx = np.mgrid[0:64, 0:80]
    for index in range(24):
        mask = np.zeros((64, 80), dtype=bool)
        if index % 4:
            cy, cx, ry, rx = rng.integers(16, 48), rng.integers(16, 64), rng.integers(6, 14), rng.integers(6, 14)
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        image = (rng.integers(20, 60, size=(64, 80)) + 170 * mask).astype(np.uint8)
        image_path, mask_path = folder / f"img{index}.png", folder / f"mask{index}.png"
        Image.fromarray(image).save(image_path)
        Image.fromarray(mask).save(mask_path)
        rows.append({"sample_id": f"s{index}", "image_path": str(image_path), "source_file": "blobs.csv",
                     "source_row": index, "mask_path": str(mask_path)})
    table = pd.DataFrame(rows)
    return SplitTables(table.iloc[:12].reset_index(drop=True), table.iloc[12:18].reset_index(drop=True),
                       table.iloc[18:].reset_index(drop=True))


BLOB_TASK = TaskSpec(
    name="blob_seg", dataset="blobs", protocol="segmentation", description="bright blobs",
    load_splits=lambda folder: _blob_splits(folder), label_names=("blob",), target="mask", primary_metric="dice",
    load_mask=lambda row: np.asarray(Image.open(row["mask_path"])) > 0,
)


@pytest.fixture(scope="module")
def blob_splits(tmp_path_factory):
    return _blob_splits(tmp_path_factory.mktemp("blobs"))


def _inputs(encoder, splits, cache, work, **hparams) -> ProtocolInputs:
    return ProtocolInputs(task=BLOB_TASK, encoder=encoder, encoder_key=encoder_fingerprint(encoder), splits=splits,
                          seed=0, hparams={**FAST, **hparams}, cache_dir=cache, work_dir=work)


def _resnet18() -> ResNetEncoder:
    torch.manual_seed(0)
    return ResNetEncoder("resnet18", 64)


def test_hook_registers_the_protocol_without_importing_lightning():
    (spec,) = medvlp_bench_protocols()
    assert spec.name == "segmentation" and spec.run is run
    probe = ("import sys, medvlp_bench_plugins.protocols.segmentation; "
             "print(sorted({'lightning', 'segmentation_models_pytorch'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"


def test_masks_are_letterboxed_like_images_and_checked_against_image_sizes(blob_splits, tmp_path):
    table = blob_splits.test
    images, key = prepare_images(table, 64, tmp_path / "images")
    masks = letterboxed_masks(BLOB_TASK, table, key, tmp_path / "images", 64, tmp_path / "masks")
    assert masks.shape == (6, 64, 64) and masks.dtype == bool
    # 64x80 -> 51x64 with 6 rows of padding above: the mask lies only where the image has content
    assert not masks[:, :6].any() and masks.any()
    transposed = dataclasses.replace(BLOB_TASK, name="transposed", load_mask=lambda row: np.zeros((80, 64), bool))
    with pytest.raises(DataError, match="blobs.csv, row 18"):
        letterboxed_masks(transposed, table, key, tmp_path / "images", 64, tmp_path / "masks")


def test_unet_encoder_holds_the_method_weights_and_is_frozen():
    encoder = _resnet18()
    segmenter = build_segmenter(encoder, "frozen")
    assert isinstance(segmenter, UnetSegmenter)
    smp_state, source = segmenter.unet.encoder.state_dict(), encoder.model.state_dict()
    assert set(smp_state) == set(source)
    assert all(torch.equal(smp_state[key], source[key]) for key in source)
    assert not any(p.requires_grad for p in segmenter.unet.encoder.parameters())
    assert all(p.requires_grad for p in segmenter.unet.decoder.parameters())
    segmenter.train()
    assert not segmenter.unet.encoder.training and segmenter.unet.decoder.training


def test_bn_drift_keeps_weights_frozen_but_batchnorm_in_train_mode():
    segmenter = build_segmenter(_resnet18(), "bn_drift").train()
    assert segmenter.unet.encoder.bn1.training
    assert not any(p.requires_grad for p in segmenter.unet.encoder.parameters())


def test_unet_decoding_cached_maps_equals_the_full_forward():
    segmenter = build_segmenter(_resnet18(), "frozen").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(segmenter.decode(segmenter.cacheable_maps(x), x), segmenter(x), atol=1e-5)


def test_generic_path_copies_the_encoder_and_returns_input_sized_logits():
    encoder = TinyCNN()
    segmenter = build_segmenter(encoder, "frozen")
    assert isinstance(segmenter, GenericSegmenter) and segmenter.encoder is not encoder
    assert all(p.requires_grad for p in encoder.parameters())
    assert segmenter(torch.randn(2, 3, 64, 64)).shape == (2, 1, 64, 64)
    # a ViT-like map (stride 14): four x2 blocks overshoot to 256 px, then a resize to 224
    vit_like = ProgressiveUpsamplingDecoder(24, stride=14, output_size=224)
    assert vit_like(torch.randn(1, 24, 16, 16)).shape == (1, 1, 224, 224)
    assert [m.out_channels for m in vit_like.blocks if isinstance(m, nn.Conv2d)] == [512, 256, 128, 64]


def test_linear_path_reads_all_maps_through_batchnorm_and_one_1x1_conv():
    encoder = TinyCNN()
    segmenter = build_segmenter(encoder, "frozen", "linear")
    assert isinstance(segmenter, LinearSegmenter) and segmenter.encoder is not encoder
    assert segmenter.cached_strides == (2, 4, 8) and segmenter.cached_channels == (8, 16, 32)
    trainable = sum(p.numel() for p in segmenter.parameters() if p.requires_grad)
    assert trainable == (56 + 1) + 2 * 56  # 1x1 conv weights + bias, BatchNorm scale and shift
    with torch.no_grad():
        segmenter.normalise.running_mean.normal_()
        segmenter.normalise.running_var.uniform_(0.5, 2.0)
        segmenter.classifier.weight.normal_()
        segmenter.eval()
        x = torch.randn(2, 3, 64, 64)
        maps = encoder.eval().feature_maps(x)
        grid = [F.interpolate(level, size=(32, 32), mode="bilinear", align_corners=False) for level in maps]
        stacked = torch.cat(grid, dim=1)
        bn = segmenter.normalise
        normalised = (stacked - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
        logits = torch.einsum("bchw,c->bhw", normalised, segmenter.classifier.weight.flatten())
        expected = F.interpolate((logits + segmenter.classifier.bias)[:, None], size=(64, 64), mode="bilinear",
                                 align_corners=False)
        assert torch.allclose(segmenter(x), expected, atol=1e-4)
        assert torch.allclose(segmenter.decode(segmenter.cacheable_maps(x), x), segmenter(x), atol=1e-6)


def test_end_to_end_linear_read_out_caches_every_map(blob_splits, tmp_path):
    encoder, cache = _resnet18(), tmp_path / "cache"
    first = run(_inputs(encoder, blob_splits, cache, tmp_path / "w1", decoder="linear"))
    assert first.details["path"] == "linear" and first.details["feature_cache"]
    stage_values = 64 * 16 * 16 + 128 * 8 * 8 + 256 * 4 * 4 + 512 * 2 * 2  # strides 4..32 at 64 px
    assert first.details["feature_cache_bytes_per_image"] == 2 * stage_values
    assert all(0.0 <= value <= 1.0 for value in first.metrics.values())


def test_augmentation_moves_image_and_mask_together():
    torch.manual_seed(3)
    mask = np.zeros((4, 64, 64), dtype=bool)
    mask[:, 20:44, 10:30] = True
    samples = SegmentationSamples((mask * 255).astype(np.uint8), mask, augment=reference_augmentation())
    for index in range(4):
        image, target = samples[index]
        assert target.shape == (1, 64, 64) and set(target.unique().tolist()) <= {0.0, 1.0}
        agreement = ((image > 127).float() == target).float().mean()
        assert agreement > 0.98


def test_end_to_end_unet_rerun_reads_the_cache(blob_splits, tmp_path, monkeypatch):
    calls = []
    original = smp.encoders.resnet.ResNetEncoder.forward

    def counting_forward(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(smp.encoders.resnet.ResNetEncoder, "forward", counting_forward)
    encoder, cache = _resnet18(), tmp_path / "cache"
    first = run(_inputs(encoder, blob_splits, cache, tmp_path / "w1"))
    assert calls and first.details["path"] == "unet" and first.details["feature_cache"]
    stage_values = 64 * 16 * 16 + 128 * 8 * 8 + 256 * 4 * 4 + 512 * 2 * 2  # strides 4..32 at 64 px
    assert first.details["feature_cache_bytes_per_image"] == 2 * stage_values
    calls.clear()
    second = run(_inputs(encoder, blob_splits, cache, tmp_path / "w2"))
    assert calls == []
    assert second.metrics == first.metrics
    assert set(first.metrics) == {"dice", "dice_positive", "empty_correct", "dice_reference_batched"}
    assert all(0.0 <= value <= 1.0 for value in first.metrics.values())
    assert (first.n_train, first.n_val, first.n_test) == (12, 6, 6)


def test_end_to_end_generic_encoder_and_cache(blob_splits, tmp_path):
    encoder, cache = TinyCNN(), tmp_path / "cache"
    TinyCNN.calls = 0
    first = run(_inputs(encoder, blob_splits, cache, tmp_path / "w1"))
    assert TinyCNN.calls > 0 and first.details["path"] == "generic"
    TinyCNN.calls = 0
    second = run(_inputs(encoder, blob_splits, cache, tmp_path / "w2"))
    assert TinyCNN.calls == 0 and second.metrics == first.metrics
    assert all(0.0 <= value <= 1.0 for value in first.metrics.values())


def test_outputs_reproduce_the_metrics(blob_splits, tmp_path):
    result = run(_inputs(TinyCNN(), blob_splits, tmp_path / "cache", tmp_path / "w", max_epochs=3))
    out, test = result.outputs, blob_splits.test
    assert str(out["kind"]) == "segmentation"
    assert out["sample_id"].tolist() == out["patient_id"].tolist() == test["sample_id"].tolist()
    truth_empty = np.array([not BLOB_TASK.load_mask(row).any() for _, row in test.iterrows()])
    assert out["truth_empty"].tolist() == truth_empty.tolist() and truth_empty.any() and not truth_empty.all()
    assert out["dice"].dtype == np.float64
    # the empty-mask rule: an image without a finding scores 1 exactly when nothing is predicted
    assert out["dice"][truth_empty].tolist() == out["pred_empty"][truth_empty].astype(float).tolist()
    assert result.metrics["dice"] == pytest.approx(out["dice"].mean(), abs=1e-12)
    assert result.metrics["dice_positive"] == pytest.approx(out["dice"][~truth_empty].mean(), abs=1e-12)
    assert result.metrics["empty_correct"] == pytest.approx(out["pred_empty"][truth_empty].mean(), abs=1e-12)


def test_augmented_run_uses_no_cache(blob_splits, tmp_path):
    result = run(_inputs(TinyCNN(), blob_splits, tmp_path / "cache", tmp_path / "w", augment=True, max_epochs=1))
    assert not result.details["feature_cache"] and result.details["augmentation"] != "none"
    assert not (tmp_path / "cache" / "segmentation_maps").exists()
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())


def test_reference_bn_drift_run_trains_without_cache_and_leaves_the_callers_encoder_alone(blob_splits, tmp_path):
    encoder = _resnet18()
    before = {key: value.clone() for key, value in encoder.state_dict().items()}
    result = run(_inputs(encoder, blob_splits, tmp_path / "cache", tmp_path / "w", reference_bn_drift=True,
                         max_epochs=1))
    assert result.details["encoder_batchnorm"] == "train (reference drift)" and not result.details["feature_cache"]
    assert all(torch.equal(before[key], value) for key, value in encoder.state_dict().items())
    assert all(0.0 <= value <= 1.0 for value in result.metrics.values())


@pytest.mark.parametrize("monitor, pick", [("val_loss", min), ("val_dice", max)])
def test_selection_follows_the_monitor_and_the_history_is_recorded(blob_splits, tmp_path, monitor, pick):
    result = run(_inputs(TinyCNN(), blob_splits, tmp_path / "cache", tmp_path / "w", max_epochs=3, monitor=monitor))
    history = result.details["val_history"]
    assert [entry["epoch"] for entry in history] == [0, 1, 2]
    assert all(set(entry) == {"epoch", "val_loss", "val_dice"} for entry in history)
    assert result.details["selected_on"].startswith(monitor)
    assert result.details["best_validation_score"] == pytest.approx(pick(entry[monitor] for entry in history),
                                                                    abs=1e-5)


@pytest.mark.parametrize("option, message", [
    ({"monitor": "val_dcie"}, "monitor='val_dcie'.*val_loss, val_dice"),
    ({"lr_schedule": "cosin"}, "lr_schedule='cosin'.*constant, cosine"),
    ({"decoder": "linaer"}, "decoder='linaer'.*auto, unet, generic, linear"),
])
def test_an_unknown_choice_is_refused_before_training(blob_splits, tmp_path, option, message):
    with pytest.raises(MedvlpError, match=message):
        run(_inputs(TinyCNN(), blob_splits, tmp_path / "cache", tmp_path / "w", **option))
    assert not (tmp_path / "cache").exists()
