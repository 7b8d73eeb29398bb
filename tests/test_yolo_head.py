"""YOLOv3 head: anchors, shapes, batched target assignment against a loop, ignore mask, loss, decoding + NMS."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from medvlp_bench_plugins.protocols.yolo_head import (
    YoloHead,
    assign_targets,
    decode_boxes,
    detections,
    ignore_masks,
    upsample2x,
    yolo_anchors,
    yolo_loss,
)

SIZE = 64
STRIDES = (8, 16, 32)
GRIDS = ((8, 8), (4, 4), (2, 2))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: on a shared 2-core machine a second intra-op thread only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _loop_assignment(gt_boxes, gt_labels, gt_valid, anchors, num_classes):
    """The straightforward per-box implementation of the assignment (plain Python floats)."""
    flat = anchors.reshape(-1, 2).tolist()
    out = [
        (torch.zeros(2, 3, h, w, dtype=torch.bool), torch.zeros(2, 3, h, w, 4), torch.zeros(2, 3, h, w, num_classes))
        for h, w in GRIDS
    ]
    for b in range(gt_boxes.shape[0]):
        for m in range(gt_boxes.shape[1]):
            if not gt_valid[b, m]:
                continue
            x1, y1, x2, y2 = gt_boxes[b, m].tolist()
            w, h, cx, cy = x2 - x1, y2 - y1, (x1 + x2) / 2, (y1 + y2) / 2
            ious = [min(w, aw) * min(h, ah) / (w * h + aw * ah - min(w, aw) * min(h, ah)) for aw, ah in flat]
            best = max(range(9), key=lambda k: ious[k])
            level, anchor = best // 3, best % 3
            stride, (gh, gw) = STRIDES[level], GRIDS[level]
            col, row = min(int(cx // stride), gw - 1), min(int(cy // stride), gh - 1)
            positive, box, classes = out[level]
            positive[b, anchor, row, col] = True
            aw, ah = flat[best]
            box[b, anchor, row, col] = torch.tensor(
                [cx / stride - col, cy / stride - row, math.log(w / aw), math.log(h / ah)]
            )
            classes[b, anchor, row, col] = 0.0
            classes[b, anchor, row, col, int(gt_labels[b, m])] = 1.0
    return out


def test_anchors_are_coco_scaled_to_the_input():
    anchors = yolo_anchors(224)
    assert anchors.shape == (3, 3, 2)
    assert torch.allclose(anchors[0, 0], torch.tensor([10.0, 13.0]) * 224 / 416)
    assert torch.allclose(anchors[2, 2], torch.tensor([373.0, 326.0]) * 224 / 416)


def test_head_shapes_and_upsampling():
    head = YoloHead((8, 16, 32), num_classes=2, width=16)
    maps = [torch.randn(2, c, h, w) for c, (h, w) in zip((8, 16, 32), GRIDS)]
    raw = head(maps)
    assert [tuple(r.shape) for r in raw] == [(2, 3, h, w, 7) for h, w in GRIDS]
    x = torch.randn(1, 2, 3, 4)
    assert torch.equal(upsample2x(x, (6, 8)), F.interpolate(x, scale_factor=2, mode="nearest"))
    assert upsample2x(x, (5, 7)).shape == (1, 2, 5, 7)


def test_assignment_hand_case():
    anchors = yolo_anchors(SIZE)
    # a 24 x 30 box centred at (40, 20) -> anchor 1 of level 2 (about 24 x 30.5), cell (col 1, row 0)
    # a 2 x 4 box centred at (10, 13) -> anchor 1 of level 0 (about 2.5 x 4.6), cell (col 1, row 1)
    boxes = torch.tensor([[[28.0, 5.0, 52.0, 35.0], [9.0, 11.0, 11.0, 15.0]]])
    targets = assign_targets(boxes, torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool),
                             anchors, STRIDES, GRIDS, 1)
    assert [int(t.positive.sum()) for t in targets] == [1, 0, 1]
    assert targets[2].positive[0, 1, 0, 1] and targets[0].positive[0, 1, 1, 1]
    deep_anchor_w, deep_anchor_h = anchors[2, 1].tolist()
    expected_deep = torch.tensor([40 / 32 - 1, 20 / 32, math.log(24 / deep_anchor_w), math.log(30 / deep_anchor_h)])
    assert torch.allclose(targets[2].box[0, 1, 0, 1], expected_deep)
    expected_shallow = torch.tensor([0.25, 0.625, math.log(2 / anchors[0, 1, 0]), math.log(4 / anchors[0, 1, 1])])
    assert torch.allclose(targets[0].box[0, 1, 1, 1], expected_shallow)
    assert targets[0].classes[0, 1, 1, 1, 0] == 1 and targets[0].classes.sum() == 1


def test_batched_assignment_equals_the_loop():
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(2, 7, 2, generator=generator) * SIZE
    sizes = 1 + torch.rand(2, 7, 2, generator=generator) * 40
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)
    boxes[0, 6] = boxes[0, 5]  # two identical boxes: same cell and anchor, the later one wins
    labels = torch.randint(0, 2, (2, 7), generator=generator)
    labels[0, 6] = 1 - labels[0, 5]
    valid = torch.rand(2, 7, generator=generator) > 0.2
    valid[0, 5:] = True
    anchors = yolo_anchors(SIZE)
    batched = assign_targets(boxes, labels, valid, anchors, STRIDES, GRIDS, 2)
    looped = _loop_assignment(boxes, labels, valid, anchors, 2)
    for target, (positive, box, classes) in zip(batched, looped):
        assert torch.equal(target.positive, positive)
        assert torch.allclose(target.box, box, atol=1e-5)
        assert torch.equal(target.classes, classes)


def test_ignore_mask_is_iou_above_threshold_with_any_box():
    generator = torch.Generator().manual_seed(1)
    anchors = yolo_anchors(SIZE)
    raw = [torch.randn(2, 3, h, w, 6, generator=generator) for h, w in GRIDS]
    exact = decode_boxes(raw[1], anchors[1], 16)[1, 2, 1, 3]  # image 1's prediction
    gt = torch.stack([torch.tensor([[0.0, 0.0, 30.0, 30.0], [0.0, 0.0, 1.0, 1.0]]),
                      torch.stack([exact, torch.tensor([5.0, 5.0, 60.0, 50.0])])])
    valid = torch.tensor([[True, False], [True, True]])
    masks = ignore_masks(raw, anchors, STRIDES, gt, valid, 0.5)
    for level, mask in enumerate(masks):
        for b in range(2):
            boxes = decode_boxes(raw[level], anchors[level], STRIDES[level])[b].reshape(-1, 4)
            expected = (box_iou(boxes, gt[b][valid[b]]).amax(1) > 0.5).view(mask.shape[1:])
            assert torch.equal(mask[b], expected)
    assert masks[1][1, 2, 1, 3]


def test_loss_without_boxes_is_only_no_object_and_learns():
    head = YoloHead((4, 4, 4), width=8)
    maps = [torch.randn(2, 4, h, w) for h, w in GRIDS]
    anchors = yolo_anchors(SIZE)
    empty = yolo_loss(head(maps), torch.zeros(2, 1, 4), torch.zeros(2, 1, dtype=torch.long),
                      torch.zeros(2, 1, dtype=torch.bool), anchors, STRIDES)
    assert empty["coord"] == 0 and empty["obj"] == 0 and empty["cls"] == 0 and empty["noobj"] > 0
    boxes = torch.tensor([[[10.0, 12.0, 40.0, 44.0]], [[30.0, 20.0, 38.0, 30.0]]])
    args = (torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1, dtype=torch.bool), anchors, STRIDES)
    optimiser = torch.optim.AdamW(head.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = yolo_loss(head(maps), boxes, *args)["loss"]
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.5 * first


def test_decoding_threshold_nms_and_clipping():
    anchors = yolo_anchors(SIZE)
    raw = [torch.zeros(2, 3, h, w, 6) for h, w in GRIDS]
    for level in raw:
        level[..., 4] = -10.0
        level[..., 5] = 10.0
    # two overlapping boxes on level 0, anchor 2 (about 5.1 x 3.5 px, enlarged 4x): the better one survives NMS
    raw[0][0, 2, 1, 1, :5] = torch.tensor([2.0, 0.0, math.log(4), math.log(4), 3.0])
    raw[0][0, 2, 1, 2, :5] = torch.tensor([-2.0, 0.0, math.log(4), math.log(4), 1.0])
    # a large box in the corner of level 2 (anchor 2, about 57 x 50 px): clipped to the image
    raw[2][0, 2, 0, 0, 4] = 2.0
    # below the confidence threshold
    raw[1][0, 0, 3, 3, 4] = math.log(0.4 / 0.6)
    out = detections(raw, anchors, STRIDES, SIZE, conf_threshold=0.5, nms_threshold=0.5)
    assert len(out) == 2 and len(out[1]["boxes"]) == 0
    first = out[0]
    assert len(first["boxes"]) == 2 and first["labels"].tolist() == [0, 0]
    best = torch.sigmoid(torch.tensor(3.0)) * torch.sigmoid(torch.tensor(10.0))
    assert first["scores"][0] == pytest.approx(float(best), abs=1e-6)
    w, h = (anchors[0, 2] * 4).tolist()
    cx, cy = (torch.sigmoid(torch.tensor(2.0)).item() + 1) * 8, 1.5 * 8
    assert torch.allclose(first["boxes"][0], torch.tensor([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
    aw, ah = anchors[2, 2].tolist()
    assert torch.allclose(first["boxes"][1], torch.tensor([0.0, 0.0, 16 + aw / 2, 16 + ah / 2]))
