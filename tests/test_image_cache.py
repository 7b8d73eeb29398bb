"""Prepared-image cache: letterboxing, reuse, invalidation, errors naming the CSV row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medvlp_bench.data.image_cache import letterbox, prepare_images
from medvlp_bench.errors import DataError


def _table(tmp_path, count=5, size=(40, 20)):
    paths = []
    for index in range(count):
        path = tmp_path / f"img{index}.png"
        Image.fromarray(np.full(size, (10 * index + 5) % 256, dtype=np.uint8)).save(path)
        paths.append(str(path))
    return pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(count)], "image_path": paths,
         "source_file": "labels.csv", "source_row": range(2, count + 2)}
    )


def test_letterbox_keeps_aspect_and_pads_with_zeros():
    out = letterbox(np.full((40, 20), 200, dtype=np.uint8), 16)
    assert out.shape == (16, 16)
    assert (out[:, 4:12] == 200).all() and (out[:, :4] == 0).all() and (out[:, 12:] == 0).all()


def test_cache_is_reused_and_invalidated_by_changes(tmp_path):
    table = _table(tmp_path)
    first, key = prepare_images(table, 16, tmp_path / "cache", workers=1)
    assert first.shape == (5, 16, 16) and first[3, 8, 8] == 35
    again, same_key = prepare_images(table, 16, tmp_path / "cache", workers=1)
    assert same_key == key and isinstance(again, np.memmap)
    Image.fromarray(np.full((40, 20), 99, dtype=np.uint8)).save(table.image_path[0])
    changed, new_key = prepare_images(table, 16, tmp_path / "cache", workers=1)
    assert new_key != key and changed[0, 8, 8] == 99


def test_unreadable_images_are_reported_with_file_and_row(tmp_path):
    table = _table(tmp_path)
    (tmp_path / "img2.png").write_bytes(b"garbage")
    (tmp_path / "img4.png").unlink()
    with pytest.raises(DataError) as caught:
        prepare_images(table, 16, tmp_path / "cache", workers=1)
    message = str(caught.value)
    assert "2 image(s)" in message
    assert "labels.csv, row 4" in message and "img2.png" in message
    assert "labels.csv, row 6" in message and "image file not found" in message
    assert not list((tmp_path / "cache").glob("*.u8"))


def test_parallel_preparation_matches_serial(tmp_path):
    table = _table(tmp_path, count=70)
    serial, _ = prepare_images(table, 16, tmp_path / "a", workers=1)
    parallel, _ = prepare_images(table, 16, tmp_path / "b", workers=2)
    assert np.array_equal(np.asarray(serial), np.asarray(parallel))


def test_original_sizes_are_kept_and_geometry_maps_points(tmp_path):
    from medvlp_bench.data.image_cache import letterbox_geometry, prepared_sizes

    table = _table(tmp_path, count=3, size=(40, 20))
    images, key = prepare_images(table, 16, tmp_path / "cache", workers=1)
    assert prepared_sizes(key, tmp_path / "cache").tolist() == [[40, 20]] * 3
    scale, top, left = letterbox_geometry(40, 20, 16)
    assert (scale, top, left) == (0.4, 0, 4)
    assert images[0, 0, left] != 0 and images[0, 0, left - 1] == 0


def test_bool_masks_letterbox_with_nearest_neighbour():
    mask = np.zeros((40, 20), dtype=bool)
    mask[:20] = True
    out = letterbox(mask, 16)
    assert out.dtype == bool and out[:8, 4:12].all() and not out[8:].any()
