"""Relative run-length encoding (SIIM-ACR): hand-checked cases, round trips, malformed strings rejected."""

from __future__ import annotations

import numpy as np
import pytest

from medvlp_bench_plugins.datasets.rle import (
    EMPTY,
    RLEError,
    decode_relative_rle,
    encode_relative_rle,
    parse_runs,
    run_end,
)


def test_hand_checked_4x4():
    # pixels are numbered down the columns: runs (1, 2) -> pixels 1-2; then 3 further on -> pixels 6-9
    expected = np.array([
        [0, 0, 1, 0],
        [1, 0, 1, 0],
        [1, 1, 0, 0],
        [0, 1, 0, 0],
    ], dtype=bool)
    assert np.array_equal(decode_relative_rle("1 2 3 4", 4, 4), expected)
    assert encode_relative_rle(expected) == "1 2 3 4"


def test_hand_checked_non_square_is_column_major():
    # 2 rows x 3 columns: pixel 0 = (0, 0), pixels 3-4 = (1, 1) and (0, 2)
    expected = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)
    assert np.array_equal(decode_relative_rle("0 1 2 2", 2, 3), expected)
    assert encode_relative_rle(expected) == "0 1 2 2"


def test_first_and_last_pixels_and_full_mask():
    first = decode_relative_rle("0 1", 3, 3)
    assert first[0, 0] and first.sum() == 1
    last = decode_relative_rle("8 1", 3, 3)
    assert last[2, 2] and last.sum() == 1
    assert decode_relative_rle("0 9", 3, 3).all()
    assert encode_relative_rle(np.ones((3, 3), bool)) == "0 9"


@pytest.mark.parametrize("text", ["-1", " -1", "-1 ", "  -1  ", ""])
def test_minus_one_and_blank_are_empty(text):
    mask = decode_relative_rle(text, 5, 4)
    assert mask.shape == (5, 4) and mask.dtype == bool and not mask.any()


def test_empty_mask_encodes_as_minus_one():
    assert encode_relative_rle(np.zeros((7, 3), bool)) == EMPTY


def test_touching_runs_merge():
    mask = decode_relative_rle("0 2 0 2", 2, 3)
    assert mask.ravel(order="F").tolist() == [True] * 4 + [False] * 2
    assert encode_relative_rle(mask) == "0 4"


@pytest.mark.parametrize("shape, density", [((1, 1), 0.5), ((13, 7), 0.3), ((64, 48), 0.5), ((100, 130), 0.05)])
def test_random_round_trip(shape, density):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for _ in range(20):
        mask = rng.random(shape) < density
        text = encode_relative_rle(mask)
        assert np.array_equal(decode_relative_rle(text, *shape), mask)
        assert encode_relative_rle(decode_relative_rle(text, *shape)) == text


def test_blob_round_trip_on_a_large_image():
    rows, cols = np.ogrid[:1024, :1024]
    mask = (rows - 300) ** 2 + (cols - 700) ** 2 < 150 ** 2
    text = encode_relative_rle(mask)
    assert len(text.split()) == 2 * 299  # one run per column the disc crosses
    assert np.array_equal(decode_relative_rle(text, 1024, 1024), mask)


def test_run_end_is_one_past_the_last_pixel():
    assert run_end("1 2 3 4") == 10
    assert run_end("-1") == 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1 2 x 4", "non-integer token 'x'"),
        ("1 2.5", "non-integer token '2.5'"),
        ("1 2 3", "odd number of tokens (3)"),
        ("-2 3", "negative offset -2"),
        ("1 0", "run length 0 < 1"),
        ("-1 -1", "negative offset -1"),
    ],
)
def test_malformed_strings_are_rejected(text, reason):
    with pytest.raises(RLEError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_runs(text)


@pytest.mark.parametrize("text", ["0 17", "16 1", "10 3 2 2", "1 1 14 1"])
def test_runs_past_the_image_are_rejected(text):
    with pytest.raises(RLEError, match="past the 4 x 4 image"):
        decode_relative_rle(text, 4, 4)


def test_run_ending_exactly_at_the_last_pixel_is_accepted():
    assert decode_relative_rle("15 1", 4, 4)[3, 3]
    assert decode_relative_rle("10 3 1 2", 4, 4).sum() == 5
