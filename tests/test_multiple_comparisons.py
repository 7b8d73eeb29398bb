"""Tests of Holm and Benjamini-Hochberg adjustments on hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from medvlp_bench.statistics.multiple_comparisons import adjust_p_values

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 0.04) = 0.06
    assert adjust_p_values(P, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> k p / rank = 0.02, 0.02, 0.04, 0.04; running minimum from the top
    assert adjust_p_values(P, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_caps_at_one_none_and_nan():
    assert adjust_p_values([0.6, 0.7], "holm") == pytest.approx([1.0, 1.0])
    assert adjust_p_values(P, "none") == pytest.approx(P)
    adjusted = adjust_p_values([0.01, np.nan, 0.02], "holm")  # k = 2: 0.02, then max(0.02, 0.02)
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.02])
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p_values(P, "bonferroni")
