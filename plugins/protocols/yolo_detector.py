"""The trainable part of the detection protocol: a Lightning module around :class:`YoloHead`, its data, and fit/test.

Samples (:class:`DetectionSamples`) carry either the cached frozen maps of an image (three float16 arrays) or the
prepared uint8 image itself, plus its padded boxes. With images, the module runs the frozen encoder on every
batch (``level_maps``): in eval mode (BatchNorm statistics frozen), or, with ``bn_drift``, in train mode during
training steps like the reference code (BatchNorm normalises with batch statistics and its running statistics
drift; evaluation then uses the drifted statistics). Encoder parameters never train.

Optimiser AdamW on the head; at most ``max_epochs`` epochs; validation mAP (:class:`DetectionMeanAP` ``map``) each
epoch drives checkpointing and early stopping (``patience`` epochs); the test split is predicted with the best
checkpoint, and its predictions and true boxes (prepared pixels, the flat arrays of
:meth:`DetectionMeanAP.arrays`, images in loader order) are returned for the protocol to score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medvlp_bench.api import HeadFitSettings, ImageEncoder, fit_head
from medvlp_bench_plugins.protocols.detection_metrics import REFERENCE_SCORE_THRESHOLD, DetectionMeanAP
from medvlp_bench_plugins.protocols.feature_map_cache import level_maps
from medvlp_bench_plugins.protocols.yolo_head import YoloHead, detections, yolo_loss


#: images per forward pass in validation and test (the head is in eval mode there, so the scores do not depend on it)
EVAL_BATCH_SIZE = 64


class DetectionSamples(Dataset):
    """Item n: ``{"arrays": [array[n] as a tensor for each array], "boxes": (M, 4) float32, "valid": (M,) bool}``.

    ``arrays``: the per-level cached maps (N, C_l, H_l, W_l) or the prepared images (N, side, side);
    ``boxes`` (N, M, 4) xyxy in prepared pixels, padded; ``valid`` (N, M) marks real boxes.
    """

    def __init__(self, arrays: Sequence[np.ndarray], boxes: np.ndarray, valid: np.ndarray):
        self.arrays, self.boxes, self.valid = arrays, torch.from_numpy(boxes), torch.from_numpy(valid)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int) -> dict:
        return {
            "arrays": [torch.from_numpy(np.array(array[index])) for array in self.arrays],
            "boxes": self.boxes[index],
            "valid": self.valid[index],
        }


@dataclass(frozen=True)
class HeadSettings:
    """What the module needs besides its inputs (units: pixels of the prepared image, fractions, epochs)."""

    image_size: int
    levels: tuple[int, ...]
    anchors: tuple
    in_channels: tuple[int, ...]
    num_classes: int
    width: int
    lr: float
    weight_decay: float
    ignore_threshold: float
    coord_weight: float
    noobj_weight: float
    conf_threshold: float
    nms_threshold: float
    reference_conf_threshold: float = REFERENCE_SCORE_THRESHOLD


class YoloDetector(L.LightningModule):
    """YOLOv3 head (+ the frozen encoder when features are not cached) trained with :func:`yolo_loss`."""

    def __init__(self, settings: HeadSettings, encoder: Optional[ImageEncoder] = None, bn_drift: bool = False):
        super().__init__()
        self.settings, self.bn_drift = settings, bn_drift
        self.head = YoloHead(settings.in_channels, settings.num_classes, settings.width)
        self.register_buffer("anchors", torch.tensor(settings.anchors, dtype=torch.float32))
        self.encoder = encoder
        if encoder is not None:
            encoder.requires_grad_(False)
        self.val_map = DetectionMeanAP(reference_score_threshold=settings.reference_conf_threshold)
        self.test_map = DetectionMeanAP(reference_score_threshold=settings.reference_conf_threshold)
        self.test_arrays: dict[str, np.ndarray] = {}

    def train(self, mode: bool = True):
        """Lightning switches the whole module to train mode for training; the encoder stays in eval mode unless
        ``bn_drift`` reproduces the reference."""
        super().train(mode)
        if self.encoder is not None and not self.bn_drift:
            self.encoder.eval()
        return self

    def _maps(self, batch: dict) -> list[torch.Tensor]:
        if self.encoder is None:
            return [array.float() for array in batch["arrays"]]
        return level_maps(self.encoder, batch["arrays"][0], self.settings.levels)

    def forward(self, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.head(maps)

    def training_step(self, batch, batch_idx):
        s = self.settings
        labels = torch.zeros(batch["valid"].shape, dtype=torch.long, device=self.device)
        parts = yolo_loss(
            self(self._maps(batch)), batch["boxes"], labels, batch["valid"], self.anchors, s.levels,
            ignore_threshold=s.ignore_threshold, coord_weight=s.coord_weight, noobj_weight=s.noobj_weight,
        )
        self.log_dict({f"train_{name}": value for name, value in parts.items()}, on_step=False, on_epoch=True)
        return parts["loss"]

    def _update(self, metric: DetectionMeanAP, batch: dict) -> None:
        s = self.settings
        predictions = detections(
            self(self._maps(batch)), self.anchors, s.levels, s.image_size,
            conf_threshold=s.conf_threshold, nms_threshold=s.nms_threshold,
        )
        targets = [
            {"boxes": boxes[valid], "labels": torch.zeros(int(valid.sum()), dtype=torch.long, device=boxes.device)}
            for boxes, valid in zip(batch["boxes"], batch["valid"])
        ]
        metric.update(predictions, targets)

    def validation_step(self, batch, batch_idx):
        self._update(self.val_map, batch)

    def on_validation_epoch_end(self):
        scores = self.val_map.compute()
        self.val_map.reset()
        self.log("val_map", scores["map"], prog_bar=True)
        self.log("val_map_reference", scores["map_reference"])

    def test_step(self, batch, batch_idx):
        self._update(self.test_map, batch)

    def on_test_epoch_end(self):
        self.test_arrays = {**self.test_map.arrays(), "n_images": self.test_map.n_images}
        self.test_map.reset()

    def configure_optimizers(self):
        s = self.settings
        return torch.optim.AdamW(self.head.parameters(), lr=s.lr, weight_decay=s.weight_decay)


@dataclass(frozen=True)
class FitOutcome:
    """``test_arrays``: the test predictions and true boxes (:meth:`DetectionMeanAP.arrays` and ``n_images``);
    ``head_training``: the harness settings of the fit."""

    test_arrays: dict
    epochs_trained: int
    best_val_map: float
    head_training: dict


def fit_and_test(
    detector: YoloDetector,
    data: dict[str, DetectionSamples],
    *,
    batch_size: int,
    max_epochs: int,
    patience: int,
    work_dir: Path,
    label: str = "detection head",
) -> FitOutcome:
    """Train on ``data["train"]``, early-stop on ``data["val"]`` mAP, predict ``data["test"]`` with the best
    checkpoint (the shared head-fitting harness, :func:`medvlp_bench.api.fit_head`)."""

    def loader(split: str, shuffle: bool) -> DataLoader:
        return DataLoader(data[split], batch_size=batch_size if shuffle else EVAL_BATCH_SIZE, shuffle=shuffle)

    settings = HeadFitSettings(name="detection", monitor="val_map", mode="max", max_epochs=max_epochs,
                               patience=patience, work_dir=Path(work_dir), label=label, shown=("val_map",))
    fitted = fit_head(detector, loader("train", True), loader("val", False), settings)
    fitted.trainer.test(detector, loader("test", False), ckpt_path=fitted.best_path, verbose=False)
    return FitOutcome(dict(detector.test_arrays), fitted.epochs_trained, fitted.best_score, fitted.describe())
