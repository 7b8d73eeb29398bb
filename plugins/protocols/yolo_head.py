"""A YOLOv3 head on frozen multi-scale feature maps: the network, batched target assignment, the loss, decoding.

Conventions: L = 3 levels ordered shallow to deep (strides ``s_l`` in input pixels, e.g. 8 / 16 / 32), A = 3
anchors per level, C classes. Boxes are ``(x1, y1, x2, y2)`` in input pixels. Ground truth comes padded:
``gt_boxes`` (B, M, 4), ``gt_labels`` (B, M) long, ``gt_valid`` (B, M) bool (M = most boxes of an image in the
batch). Raw predictions per level: (B, A, H, W, 5 + C), channels ``(t_x, t_y, t_w, t_h, t_obj, t_cls_1..C)``.

Anchors: the COCO anchors of YOLOv3 (w, h at 416 px) scaled by ``input_size / 416``.

Decoding, for cell (column i, row j) of level l with anchor (p_w, p_h):
``b_x = (sigmoid(t_x) + i) s_l``, ``b_y = (sigmoid(t_y) + j) s_l``, ``b_w = p_w exp(t_w)``, ``b_h = p_h exp(t_h)``;
class score ``sigmoid(t_obj) * sigmoid(t_cls_c)``.

Target assignment (per ground-truth box, independent of the predictions, no Python loop over boxes): the best of
the 9 anchors by shape IoU (box and anchor sharing a centre: ``m_w m_h / (w h + p_w p_h - m_w m_h)`` with
``m_w = min(w, p_w)``, ``m_h = min(h, p_h)``) fixes the level and the anchor; the cell is ``floor(center / s_l)``
(clamped to the grid). Regression targets: ``(c_x / s_l - i, c_y / s_l - j)`` (clipped to [0, 1]) and
``(log(w / p_w), log(h / p_h))``.
When two boxes of an image land on the same level, anchor and cell, the later box (higher index) wins.
Ignore mask: a non-positive (cell, anchor) whose decoded prediction has IoU > ``ignore_threshold`` (0.5) with any
ground-truth box of its image gets no no-object loss.

Loss, summed over levels; N_l = B A H W cells of level l, P_l the positive cells, Q_l the no-object cells
(neither positive nor ignored), BCE = binary cross-entropy on logits:

    L_l = [ lambda_coord * sum_P ( BCE(t_x, tx) + BCE(t_y, ty) + (t_w - tw)^2 + (t_h - th)^2 )
            + sum_P BCE(t_obj, 1) + lambda_noobj * sum_Q BCE(t_obj, 0) ] / N_l
          + sum_P sum_c BCE(t_cls_c, onehot_c) / max(|P_l| C, 1)

with lambda_coord = 2.5 and lambda_noobj = 0.5 (reference). Normalising by the level's cells keeps the loss
defined for batches without any box (most RSNA images) and gives each cell the same weight in every batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, box_convert, box_iou

#: YOLOv3's COCO anchors (width, height) in pixels at a 416 px input, per level shallow to deep
COCO_ANCHORS = (((10, 13), (16, 30), (33, 23)), ((30, 61), (62, 45), (59, 119)), ((116, 90), (156, 198), (373, 326)))
COCO_INPUT_SIZE = 416


def yolo_anchors(input_size: int) -> torch.Tensor:
    """(3, 3, 2) anchor (width, height) in pixels: the COCO anchors scaled by ``input_size / 416``."""
    return torch.tensor(COCO_ANCHORS, dtype=torch.float32) * (input_size / COCO_INPUT_SIZE)


def conv_block(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> BatchNorm -> LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1),
    )


def upsample2x(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest x2 upsampling cropped to ``size`` (H, W). Written as a broadcast, whose gradient (a sum) is
    deterministic on CUDA (``F.interpolate``'s backward is not)."""
    b, c, h, w = x.shape
    doubled = x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, 2 * h, 2 * w)
    return doubled[..., : size[0], : size[1]]


class YoloHead(nn.Module):
    """YOLOv3's detection neck and heads on three feature maps (shallow to deep).

    From the deepest level up: a tower of five blocks (1x1 w, 3x3 2w, 1x1 w, 3x3 2w, 1x1 w) on the level's input,
    an output branch (3x3 2w block, then a 1x1 conv to A (5 + C) channels), and a lateral 1x1 (w / 2) block,
    upsampled x2 (nearest) and concatenated with the next shallower map. Tower widths w are
    ``width / 4, width / 2, width`` shallow to deep (YOLOv3: 128 / 256 / 512).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int = 1, width: int = 512, anchors_per_level: int = 3):
        super().__init__()
        if len(in_channels) != 3:
            raise ValueError(f"YoloHead takes 3 feature maps, got {len(in_channels)}")
        self.num_classes, self.anchors_per_level = num_classes, anchors_per_level
        widths = (width // 4, width // 2, width)
        outputs = anchors_per_level * (5 + num_classes)
        towers, heads, laterals = [], [], []
        for level, (channels, tower_width) in enumerate(zip(in_channels, widths)):
            incoming = channels + (widths[level + 1] // 2 if level < 2 else 0)
            towers.append(
                nn.Sequential(
                    conv_block(incoming, tower_width, 1),
                    conv_block(tower_width, 2 * tower_width, 3),
                    conv_block(2 * tower_width, tower_width, 1),
                    conv_block(tower_width, 2 * tower_width, 3),
                    conv_block(2 * tower_width, tower_width, 1),
                )
            )
            heads.append(
                nn.Sequential(conv_block(tower_width, 2 * tower_width, 3), nn.Conv2d(2 * tower_width, outputs, 1))
            )
            if level > 0:
                laterals.append(conv_block(tower_width, tower_width // 2, 1))
        self.towers, self.heads, self.laterals = nn.ModuleList(towers), nn.ModuleList(heads), nn.ModuleList(laterals)

    def forward(self, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Three maps (B, C_l, H_l, W_l) shallow to deep -> raw predictions (B, A, H_l, W_l, 5 + C) per level."""
        raw: list[torch.Tensor] = [None] * 3
        carried = None
        for level in (2, 1, 0):
            x = maps[level]
            if carried is not None:
                x = torch.cat([upsample2x(carried, x.shape[-2:]), x], dim=1)
            x = self.towers[level](x)
            out = self.heads[level](x)
            b, _, h, w = out.shape
            raw[level] = out.view(b, self.anchors_per_level, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2)
            if level > 0:
                carried = self.laterals[level - 1](x)
        return raw


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor, stride: float) -> torch.Tensor:
    """(B, A, H, W, 5 + C) raw predictions of one level -> (B, A, H, W, 4) xyxy boxes in input pixels."""
    _, _, h, w, _ = raw.shape
    rows = torch.arange(h, device=raw.device, dtype=raw.dtype).view(1, 1, h, 1)
    cols = torch.arange(w, device=raw.device, dtype=raw.dtype).view(1, 1, 1, w)
    anchor_w = anchors[:, 0].to(raw).view(1, -1, 1, 1)
    anchor_h = anchors[:, 1].to(raw).view(1, -1, 1, 1)
    cxcywh = torch.stack(
        [
            (torch.sigmoid(raw[..., 0]) + cols) * stride,
            (torch.sigmoid(raw[..., 1]) + rows) * stride,
            anchor_w * torch.exp(raw[..., 2]),
            anchor_h * torch.exp(raw[..., 3]),
        ],
        dim=-1,
    )
    return box_convert(cxcywh, "cxcywh", "xyxy")


def batched_box_iou(boxes: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """(B, P, 4) and (B, M, 4) xyxy -> (B, P, M) IoU within each image (torchvision ``box_iou`` per image)."""
    return torch.vmap(box_iou)(boxes, others)


def anchor_shape_iou(sizes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(..., 2) box (w, h) and (K, 2) anchors -> (..., K) IoU of the shapes placed on a common centre."""
    overlap = torch.minimum(sizes[..., None, :], anchors).prod(-1)
    return overlap / (sizes.prod(-1)[..., None] + anchors.prod(-1) - overlap)


@dataclass
class LevelTargets:
    """Targets of one level: ``positive`` (B, A, H, W) bool, ``box`` (B, A, H, W, 4) = (tx, ty, tw, th),
    ``classes`` (B, A, H, W, C) one-hot (zero off the positive cells)."""

    positive: torch.Tensor
    box: torch.Tensor
    classes: torch.Tensor


def assign_targets(
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_valid: torch.Tensor,
    anchors: torch.Tensor,
    strides: Sequence[float],
    grid_shapes: Sequence[tuple[int, int]],
    num_classes: int,
) -> list[LevelTargets]:
    """Batched YOLOv3 target assignment (module docstring). ``anchors`` (L, A, 2) px; ``grid_shapes`` (H_l, W_l)."""
    levels, per_level = anchors.shape[:2]
    batch = gt_boxes.shape[0]
    cxcywh = box_convert(gt_boxes, "xyxy", "cxcywh")
    sizes = cxcywh[..., 2:].clamp(min=1e-6)
    best = anchor_shape_iou(sizes, anchors.reshape(-1, 2).to(gt_boxes)).argmax(-1)
    box_level, box_anchor = best // per_level, best % per_level
    targets = []
    for level, ((h, w), stride) in enumerate(zip(grid_shapes, strides)):
        positive = torch.zeros(batch, per_level, h, w, dtype=torch.bool, device=gt_boxes.device)
        box = torch.zeros(batch, per_level, h, w, 4, dtype=gt_boxes.dtype, device=gt_boxes.device)
        classes = torch.zeros(batch, per_level, h, w, num_classes, dtype=gt_boxes.dtype, device=gt_boxes.device)
        image, index = torch.nonzero(gt_valid & (box_level == level), as_tuple=True)
        if len(image):
            centre = cxcywh[image, index, :2] / stride
            col = centre[:, 0].floor().long().clamp(0, w - 1)
            row = centre[:, 1].floor().long().clamp(0, h - 1)
            anchor = box_anchor[image, index]
            cell = ((image * per_level + anchor) * h + row) * w + col
            winner = torch.full((batch * per_level * h * w,), -1, dtype=torch.long, device=gt_boxes.device)
            winner = winner.scatter_reduce(0, cell, index, reduce="amax")
            keep = winner[cell] == index
            image, index, anchor, row, col = image[keep], index[keep], anchor[keep], row[keep], col[keep]
            centre = centre[keep]
            wh = sizes[image, index] / anchors[level, anchor].to(gt_boxes)
            positive[image, anchor, row, col] = True
            offset = (centre - torch.stack([col, row], dim=1)).clamp(0, 1)
            box[image, anchor, row, col] = torch.cat([offset, wh.log()], dim=1)
            classes[image, anchor, row, col, gt_labels[image, index]] = 1.0
        targets.append(LevelTargets(positive, box, classes))
    return targets


def ignore_masks(
    raw_levels: Sequence[torch.Tensor],
    anchors: torch.Tensor,
    strides: Sequence[float],
    gt_boxes: torch.Tensor,
    gt_valid: torch.Tensor,
    threshold: float,
) -> list[torch.Tensor]:
    """Per level (B, A, H, W) bool: the decoded prediction overlaps some ground-truth box with IoU > threshold."""
    masks = []
    with torch.no_grad():
        for raw, level_anchors, stride in zip(raw_levels, anchors, strides):
            boxes = decode_boxes(raw.detach(), level_anchors, stride)
            iou = batched_box_iou(boxes.flatten(1, 3), gt_boxes.to(boxes))
            iou = iou.masked_fill(~gt_valid[:, None, :], 0.0)
            best = iou.amax(-1) if iou.shape[-1] else torch.zeros(iou.shape[:2], device=iou.device)
            masks.append((best > threshold).view(boxes.shape[:-1]))
    return masks


def yolo_loss(
    raw_levels: Sequence[torch.Tensor],
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_valid: torch.Tensor,
    anchors: torch.Tensor,
    strides: Sequence[float],
    *,
    ignore_threshold: float = 0.5,
    coord_weight: float = 2.5,
    noobj_weight: float = 0.5,
) -> dict[str, torch.Tensor]:
    """The YOLOv3 loss (module docstring): ``{"loss", "coord", "obj", "noobj", "cls"}``, each summed over levels."""
    num_classes = raw_levels[0].shape[-1] - 5
    grid_shapes = [tuple(raw.shape[2:4]) for raw in raw_levels]
    targets = assign_targets(gt_boxes, gt_labels, gt_valid, anchors, strides, grid_shapes, num_classes)
    ignored = ignore_masks(raw_levels, anchors, strides, gt_boxes, gt_valid, ignore_threshold)
    parts = {name: raw_levels[0].new_zeros(()) for name in ("coord", "obj", "noobj", "cls")}
    for raw, target, ignore in zip(raw_levels, targets, ignored):
        cells = raw.shape[:4].numel()
        positive = target.positive
        negative = ~positive & ~ignore
        pred, goal = raw[positive], target.box[positive]
        xy = F.binary_cross_entropy_with_logits(pred[:, :2], goal[:, :2], reduction="sum")
        wh = F.mse_loss(pred[:, 2:4], goal[:, 2:4], reduction="sum")
        objectness = raw[..., 4]
        parts["coord"] = parts["coord"] + coord_weight * (xy + wh) / cells
        parts["obj"] = parts["obj"] + F.binary_cross_entropy_with_logits(
            objectness[positive], torch.ones_like(objectness[positive]), reduction="sum"
        ) / cells
        parts["noobj"] = parts["noobj"] + noobj_weight * F.binary_cross_entropy_with_logits(
            objectness[negative], torch.zeros_like(objectness[negative]), reduction="sum"
        ) / cells
        parts["cls"] = parts["cls"] + F.binary_cross_entropy_with_logits(
            pred[:, 5:], target.classes[positive], reduction="sum"
        ) / max(pred.shape[0] * num_classes, 1)
    parts["loss"] = parts["coord"] + parts["obj"] + parts["noobj"] + parts["cls"]
    return parts


def detections(
    raw_levels: Sequence[torch.Tensor],
    anchors: torch.Tensor,
    strides: Sequence[float],
    image_size: float,
    *,
    conf_threshold: float = 0.5,
    nms_threshold: float = 0.5,
    max_detections: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Raw predictions -> per image ``{"boxes" (K, 4) xyxy px, "scores" (K,), "labels" (K,) long}``.

    Every (cell, anchor) gives its best class and score ``sigmoid(t_obj) sigmoid(t_cls)``; those with score >=
    ``conf_threshold`` are clipped to the image ``[0, image_size]``, reduced by class-wise NMS at IoU
    ``nms_threshold`` within each image (``batched_nms``), and the ``max_detections`` best are kept per image.
    """
    batch = raw_levels[0].shape[0]
    boxes = torch.cat([decode_boxes(raw, a, s).flatten(1, 3) for raw, a, s in zip(raw_levels, anchors, strides)], 1)
    probability = torch.cat(
        [(torch.sigmoid(raw[..., 4:5]) * torch.sigmoid(raw[..., 5:])).flatten(1, 3) for raw in raw_levels], 1
    )
    scores, labels = probability.max(-1)
    image, index = torch.nonzero(scores >= conf_threshold, as_tuple=True)
    kept_boxes = boxes[image, index].clamp(0, image_size)
    kept_scores, kept_labels = scores[image, index], labels[image, index]
    groups = image * probability.shape[-1] + kept_labels
    order = batched_nms(kept_boxes, kept_scores, groups, nms_threshold)
    out = []
    for number in range(batch):
        mine = order[image[order] == number][:max_detections]
        out.append({"boxes": kept_boxes[mine], "scores": kept_scores[mine], "labels": kept_labels[mine]})
    return out
