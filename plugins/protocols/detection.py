"""Detection protocol ("detection"): a YOLOv3 head on the frozen encoder's multi-scale maps, as the MGCA paper
(Wang et al., NeurIPS 2022) and its code release (github.com/HKU-MedAI/MGCA) evaluate detection.

Input: each split's images prepared once (``prepare_images`` at ``side = encoder.input_size``: resized so the longer
side is ``side``, zero-padded to a square, no augmentation, no crop). Boxes ``[x, y, w, h]`` in original pixels
map to the prepared image by ``letterbox_geometry``: ``x1 = x scale + left``, ``y1 = y scale + top``,
``x2 = (x + w) scale + left``, ``y2 = (y + h) scale + top`` (clipped to the image). The reference stretches each
image to 224 x 224; for square images (RSNA) both are the same.

Features: three levels. An encoder with at least three maps gives its three deepest (ResNet: layer2/3/4 at strides
8/16/32, 512/1024/2048 channels for ResNet-50); one with fewer (ViT: one map at stride 16) gives strides 8/16/32
by resampling (stride 8 = 2x nearest upsample, 16 as is, 32 = 2x2 average pool; see ``feature_map_cache``).
The encoder is frozen in eval mode (BatchNorm statistics frozen, ``frozen_bn=True``) and its maps are cached
once as float16 (``cached_feature_maps``), so training the head costs no encoder forward after the first pass.

Options (:data:`DETECTION_OPTIONS`, resolved by :func:`medvlp_bench.api.resolved_hparams`): ``use_cache=False`` runs the frozen encoder on every batch instead (same model, no disk;
float32 maps); ``reference_bn_drift=True`` reproduces the reference: the backbone's BatchNorm layers stay in train
mode while the head trains (batch statistics; running statistics drift), so features change with every batch and
cannot be cached; the encoder is computed on the fly (on a copy: the caller's encoder is unchanged) and
``frozen_bn=False`` is recorded.

Head width (``head_width``, YOLOv3's 512): ``"auto"`` (default) sizes the head to the backbone, a quarter of the
deepest level's channels: 512 for ResNet-50 (the reference's head), 128 for ResNet-18, 192 for ViT-B. A head
twice as wide as a small backbone's deepest map costs 5x the compute (ResNet-18 at 64 px: 15 vs 2.7 s per epoch
on 900 images, 2 CPU cores) and learns as much from random features as from pretrained ones. An integer fixes it.

Head, loss, decoding: :mod:`yolo_head` (COCO anchors scaled by input_size / 416, 1 class, ignore threshold 0.5,
coordinate weight 2.5, no-object weight 0.5; NMS 0.5). Predictions scored >= ``conf_threshold`` (0.05) are kept
for the metrics, so mAP sees the whole precision-recall curve; the reference's confidence threshold (0.5,
``reference_conf_threshold``) applies to ``map_reference`` only. Training: AdamW (lr 5e-4, weight decay
1e-6, batch 16; when the training fraction ``inputs.pct <= 0.01``, ``lr_at_1pct`` 2e-4 and ``batch_size_at_1pct`` 8
replace them), at most 50 epochs, early
stopping on validation ``map`` (patience 10), test with the best checkpoint (:mod:`yolo_detector`).

Metrics (:mod:`detection_metrics`), computed from the per-sample outputs below, in original image pixels
(validation, which only selects the checkpoint, scores in prepared pixels: IoU, hence mAP, is unchanged by the
letterbox's uniform scaling and translation): ``map`` (primary: COCO mAP over IoU 0.40:0.05:0.75 on all test
images), ``map_reference`` (the reference's variant: predictions scored >= 0.5, only images with >= 1 such
prediction and >= 1 box), ``map_50``.

Per-sample outputs (kind ``detection``; test split in table order): ``sample_id``, ``patient_id``;
``pred_boxes`` (M, 4) float64 x1, y1, x2, y2 in original image pixels (the letterbox undone:
``x = (x' - left) / scale``, ``y = (y' - top) / scale``; predictions are clipped to the letterboxed square only,
so one reaching into the padding extends past the original image and keeps its IoU), ``pred_scores`` (M,), ``pred_index`` (M,) int64 row of ``sample_id``; ``true_boxes`` (K, 4) the table's boxes
as x1, y1, x2, y2, ``true_index`` (K,); ``iou_thresholds`` (T,); ``score_threshold`` (0-d, ``conf_threshold``:
predictions scored below it were dropped before NMS and never reach the outputs).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from medvlp_bench.api import (
    DataError,
    ImageEncoder,
    MedvlpError,
    ProtocolInputs,
    ProtocolResult,
    ProtocolSpec,
    OptionSpec,
    hookimpl,
    identity_arrays,
    letterbox_geometry,
    prepare_images,
    prepared_sizes,
    resolved_hparams,
    seed_head_training,
)
from medvlp_bench_plugins.protocols.detection_metrics import (
    IOU_THRESHOLDS,
    METRIC_DEFINITIONS,
    REFERENCE_SCORE_THRESHOLD,
    detection_scores,
)
from medvlp_bench_plugins.protocols.feature_map_cache import cached_feature_maps, level_sources

#: the detection protocol's options, with the reference protocol's defaults
DETECTION_OPTIONS = (
    OptionSpec("lr", 5e-4, "AdamW learning rate of the head", float),
    OptionSpec("weight_decay", 1e-6, "AdamW weight decay", float),
    OptionSpec("batch_size", 16, "training batch size", int),
    OptionSpec("max_epochs", 50, "most training epochs", int),
    OptionSpec("patience", 10, "epochs without a higher validation map before training stops", int),
    OptionSpec("lr_at_1pct", 2e-4, "learning rate when the training fraction is at most 0.01", float),
    OptionSpec("batch_size_at_1pct", 8, "batch size when the training fraction is at most 0.01", int),
    OptionSpec("head_width", "auto", "YOLOv3 tower width: 'auto' (a quarter of the deepest level's channels) or "
               "a positive integer", (str, int)),
    OptionSpec("ignore_threshold", 0.5, "IoU with a true box above which a non-assigned anchor is not penalised "
               "as background", float),
    OptionSpec("coord_weight", 2.5, "weight of the box-coordinate loss", float),
    OptionSpec("noobj_weight", 0.5, "weight of the no-object confidence loss", float),
    OptionSpec("conf_threshold", 0.05, "predictions scored below it are dropped before NMS and the metrics", float),
    OptionSpec("reference_conf_threshold", REFERENCE_SCORE_THRESHOLD, "score threshold of map_reference", float),
    OptionSpec("nms_threshold", 0.5, "IoU above which NMS suppresses the lower-scored box", float),
    OptionSpec("use_cache", True, "cache the frozen encoder's maps once (False: run the encoder every batch)",
               bool),
    OptionSpec("reference_bn_drift", False, "the reference's BatchNorm layers in train mode while the head "
               "trains (implies no cache)", bool),
)
#: the training fraction at or below which ``lr_at_1pct`` and ``batch_size_at_1pct`` apply
ONE_PERCENT = 0.01
#: YOLOv3's strides, used when the encoder has fewer than three maps
YOLO_STRIDES = (8, 16, 32)


def at_training_fraction(hparams: Mapping[str, Any], pct: float) -> dict[str, Any]:
    """``hparams`` for a training fraction ``pct``: at ``pct <= 0.01`` ``lr_at_1pct`` and ``batch_size_at_1pct``
    replace ``lr`` and ``batch_size``."""
    hp = dict(hparams)
    if pct <= ONE_PERCENT:
        hp["lr"], hp["batch_size"] = hp["lr_at_1pct"], hp["batch_size_at_1pct"]
    return hp


def detection_levels(encoder: ImageEncoder) -> tuple[int, ...]:
    """Strides of the three levels: the encoder's three deepest maps, else YOLOv3's 8 / 16 / 32."""
    strides = tuple(int(stride) for stride in encoder.map_strides)
    return strides[-3:] if len(strides) >= 3 else YOLO_STRIDES


def head_width(option: Any, level_channels: tuple[int, ...]) -> int:
    """The head's tower width: ``option`` as an integer, or for ``"auto"`` ``max(level_channels) // 4`` (at least 8)."""
    if option == "auto":
        return max(8, max(level_channels) // 4)
    if isinstance(option, bool) or not isinstance(option, int) or option <= 0:
        raise MedvlpError(f"detection option head_width must be 'auto' or a positive integer, not {option!r}")
    return option


def prepared_boxes(table: pd.DataFrame, sizes: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows' ``boxes`` ([x, y, w, h], original px) -> (N, M, 4) float32 xyxy in prepared px and (N, M) validity,
    M = max(1, most boxes of a row)."""
    rows = [list(boxes) for boxes in table["boxes"]]
    width = max([1, *map(len, rows)])
    out = np.zeros((len(rows), width, 4), dtype=np.float32)
    valid = np.zeros((len(rows), width), dtype=bool)
    for n, (boxes, (height, image_width)) in enumerate(zip(rows, sizes)):
        if not boxes:
            continue
        scale, top, left = letterbox_geometry(int(height), int(image_width), side)
        xywh = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1) * scale + [left, top, left, top]
        out[n, : len(xyxy)] = np.clip(xyxy, 0, side)
        valid[n, : len(xyxy)] = True
    return out, valid


def original_boxes(boxes: np.ndarray, index: np.ndarray, sizes: np.ndarray, side: int) -> np.ndarray:
    """(M, 4) xyxy boxes in the prepared pixels of images ``index`` (original (height, width) in ``sizes``) ->
    original pixels: ``x = (x' - left) / scale``, ``y = (y' - top) / scale`` (module docstring)."""
    geometry = np.array([letterbox_geometry(int(height), int(width), side) for height, width in sizes],
                        dtype=np.float64).reshape(-1, 3)
    scale, top, left = (geometry[index, column][:, None] for column in range(3))
    offset = np.concatenate([left, top, left, top], axis=1)
    return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - offset) / scale


def table_boxes(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The rows' ``boxes`` ([x, y, w, h], original px) as (K, 4) float64 x1, y1, x2, y2 and their (K,) row index."""
    rows = [np.asarray(boxes, dtype=np.float64).reshape(-1, 4) for boxes in table["boxes"]]
    xywh = np.concatenate([np.zeros((0, 4)), *rows])
    index = np.repeat(np.arange(len(rows), dtype=np.int64), [len(boxes) for boxes in rows])
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1), index


def _split_data(inputs: ProtocolInputs, split: str, table: pd.DataFrame, levels, use_cache: bool):
    """(arrays for DetectionSamples, boxes, valid, original sizes) of one split: cached maps, or the prepared
    images."""
    encoder, side = inputs.encoder, inputs.encoder.input_size
    label = f"{inputs.task.dataset} {split}"
    image_root = Path(inputs.cache_dir) / "images"
    images, image_key = prepare_images(table, side, image_root, label=label)
    sizes = prepared_sizes(image_key, image_root)
    boxes, valid = prepared_boxes(table, sizes, side)
    if not use_cache:
        return [images], boxes, valid, sizes
    maps = cached_feature_maps(
        encoder, inputs.encoder_key, images, image_key, Path(inputs.cache_dir) / "feature_maps",
        levels=levels, label=label,
    )
    return maps, boxes, valid, sizes


def per_sample_outputs(table: pd.DataFrame, predictions: Mapping[str, Any], sizes: np.ndarray, side: int,
                 iou_thresholds, score_threshold: float) -> dict[str, np.ndarray]:
    """The per-sample outputs (module docstring) from the test predictions in prepared pixels."""
    if predictions["n_images"] != len(table):
        raise MedvlpError(f"{predictions['n_images']} test images predicted for {len(table)} test samples")
    true_boxes, true_index = table_boxes(table)
    return {
        **identity_arrays("detection", table),
        "pred_boxes": original_boxes(predictions["pred_boxes"], predictions["pred_index"], sizes, side),
        "pred_scores": np.asarray(predictions["pred_scores"], dtype=np.float64),
        "pred_index": np.asarray(predictions["pred_index"], dtype=np.int64),
        "true_boxes": true_boxes,
        "true_index": true_index,
        "iou_thresholds": np.asarray(iou_thresholds, dtype=np.float64),
        "score_threshold": np.array(float(score_threshold)),
    }


def run(inputs: ProtocolInputs) -> ProtocolResult:
    """Train and test the YOLOv3 head for ``inputs.task`` (see module docstring)."""
    from medvlp_bench_plugins.protocols.yolo_detector import DetectionSamples, HeadSettings, YoloDetector, fit_and_test
    from medvlp_bench_plugins.protocols.yolo_head import yolo_anchors

    task, encoder = inputs.task, inputs.encoder
    if task.target != "boxes":
        raise DataError(f"task {task.name} has target {task.target!r}; the detection protocol needs 'boxes'")
    hp = at_training_fraction(resolved_hparams(DETECTION_OPTIONS, inputs, protocol="detection"), inputs.pct)
    bn_drift = bool(hp["reference_bn_drift"])
    use_cache = bool(hp["use_cache"]) and not bn_drift
    levels = detection_levels(encoder)
    prepared = {split: _split_data(inputs, split, table, levels, use_cache) for split, table in inputs.splits.items()}
    for split in ("val", "test"):
        if not prepared[split][2].any():
            raise DataError(f"the {split} split of {task.name} has no boxes: its mAP is undefined")
    data = {split: DetectionSamples(*parts[:3]) for split, parts in prepared.items()}
    channels = _level_channels(encoder, levels, prepared["train"][0], use_cache)
    hp["head_width"] = head_width(hp["head_width"], channels)
    anchors = yolo_anchors(encoder.input_size)
    settings = HeadSettings(
        image_size=encoder.input_size, levels=levels, anchors=anchors.tolist(), in_channels=channels,
        num_classes=1, width=hp["head_width"], lr=float(hp["lr"]),
        weight_decay=float(hp["weight_decay"]), ignore_threshold=float(hp["ignore_threshold"]),
        coord_weight=float(hp["coord_weight"]), noobj_weight=float(hp["noobj_weight"]),
        conf_threshold=float(hp["conf_threshold"]), nms_threshold=float(hp["nms_threshold"]),
        reference_conf_threshold=float(hp["reference_conf_threshold"]),
    )
    seed_head_training(inputs.seed)
    on_the_fly = None if use_cache else (copy.deepcopy(encoder) if bn_drift else encoder)
    detector = YoloDetector(settings, encoder=on_the_fly, bn_drift=bn_drift)
    outcome = fit_and_test(
        detector, data, batch_size=int(hp["batch_size"]), max_epochs=int(hp["max_epochs"]),
        patience=int(hp["patience"]), work_dir=Path(inputs.work_dir), label=f"{task.name} head",
    )
    outputs = per_sample_outputs(inputs.splits.test, outcome.test_arrays, prepared["test"][3], encoder.input_size,
                           IOU_THRESHOLDS, hp["conf_threshold"])
    metrics = detection_scores(
        outputs["pred_boxes"], outputs["pred_scores"], outputs["pred_index"], outputs["true_boxes"],
        outputs["true_index"], len(inputs.splits.test), float(hp["reference_conf_threshold"]), IOU_THRESHOLDS,
    )
    return ProtocolResult(
        metrics=metrics,
        n_train=len(inputs.splits.train),
        n_val=len(inputs.splits.val),
        n_test=len(inputs.splits.test),
        details={
            "hparams": hp,
            "epochs_trained": outcome.epochs_trained,
            "best_val_map": outcome.best_val_map,
            "head_training": outcome.head_training,
            "frozen_bn": not bn_drift,
            "feature_cache": use_cache,
            "levels": list(levels),
            "level_channels": list(channels),
            "anchors": anchors.tolist(),
            "iou_thresholds": list(IOU_THRESHOLDS),
            "box_space": "test metrics and outputs in original image pixels; validation in the letterboxed "
                         f"{encoder.input_size} px input (IoU-equivalent)",
            "metric_definitions": dict(METRIC_DEFINITIONS),
        },
        outputs=outputs,
    )


def _level_channels(encoder: ImageEncoder, levels, train_arrays, use_cache: bool) -> tuple[int, ...]:
    """Channels per level: from the cached maps, else from the encoder's maps each level is taken from."""
    if use_cache:
        return tuple(int(array.shape[1]) for array in train_arrays)
    return tuple(int(encoder.map_channels[index]) for index, _ in level_sources(encoder.map_strides, levels))


@hookimpl
def medvlp_bench_protocols():
    return [
        ProtocolSpec(
            name="detection",
            description="Frozen encoder maps (cached) -> YOLOv3 head; mAP over IoU 0.40:0.05:0.75 (+ reference's)",
            run=run,
            options=DETECTION_OPTIONS,
            version="2",
            targets=("boxes",),
            metrics=("map", "map_reference", "map_50"),
        )
    ]
