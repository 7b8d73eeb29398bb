"""Prompt files, class embeddings (mean of the prompts' embeddings, renormalised) and class scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medvlp_bench.api import DataError, ImageTextModel
from medvlp_bench_plugins.protocols.image_text_scores import (
    averaged_class_embeddings,
    class_scores,
    load_prompts,
    resolve_prompts,
    score_matrix,
)


class LookupModel(ImageTextModel):
    """Texts embed to fixed vectors of a table; image batches are given as embeddings already."""

    def __init__(self, table: dict[str, torch.Tensor], own: bool = False):
        torch.nn.Module.__init__(self)
        self.table = table
        self.own_similarity = own

    def embed_texts(self, texts):
        return F.normalize(torch.stack([self.table[text] for text in texts]), dim=-1)

    def similarity(self, image_features, text_features):
        return 2 * image_features @ text_features.T + 1  # a score that is not the cosine


def test_class_embedding_is_the_renormalised_mean_of_its_prompts():
    rng = np.random.default_rng(0)
    prompts = F.normalize(torch.tensor(rng.normal(size=(5, 4))), dim=-1)
    classes = averaged_class_embeddings(prompts, [0, 0, 1, 1, 1], 2)
    for k, members in ((0, [0, 1]), (1, [2, 3, 4])):
        mean = prompts[members].numpy().mean(axis=0)
        assert classes[k].numpy() == pytest.approx(mean / np.linalg.norm(mean))
    assert torch.linalg.norm(classes, dim=1).numpy() == pytest.approx([1.0, 1.0])


def test_class_scores_with_the_cosine_and_with_a_models_own_score():
    rng = np.random.default_rng(1)
    vectors = {name: torch.tensor(rng.normal(size=3)) for name in ("a1", "a2", "b1")}
    images = [F.normalize(torch.tensor(rng.normal(size=(4, 3))), dim=-1),
              F.normalize(torch.tensor(rng.normal(size=(2, 3))), dim=-1)]
    all_images = torch.cat(images)
    text = {name: F.normalize(vector, dim=0) for name, vector in vectors.items()}
    cosine = class_scores(LookupModel(vectors), images, [["a1", "a2"], ["b1"]], batch_size=2, own_similarity=False)
    class_a = F.normalize(text["a1"] + text["a2"], dim=0)
    assert cosine[:, 0].numpy() == pytest.approx((all_images @ class_a).numpy())
    assert cosine[:, 1].numpy() == pytest.approx((all_images @ text["b1"]).numpy())
    own = class_scores(LookupModel(vectors, own=True), images, [["a1", "a2"], ["b1"]], batch_size=1,
                       own_similarity=True)
    expected_a = ((2 * all_images @ text["a1"] + 1) + (2 * all_images @ text["a2"] + 1)) / 2
    assert own[:, 0].numpy() == pytest.approx(expected_a.numpy())
    matrix = score_matrix(LookupModel(vectors), images, ["b1", "a1"], batch_size=1, own_similarity=False)
    assert matrix.shape == (6, 2) and matrix.dtype == torch.float64


def test_prompt_files_are_checked_and_package_files_resolve(tmp_path):
    shipped = resolve_prompts("medvlp_bench_plugins.datasets:prompts/chexpert5x200.json")
    prompts = load_prompts(shipped)
    assert len(prompts) == 5 and all(len(texts) >= 5 for texts in prompts.values())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Edema": []}))
    with pytest.raises(DataError, match="bad.json.*non-empty list"):
        load_prompts(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="JSON"):
        load_prompts(bad)
    with pytest.raises(DataError, match="prompts=FILE"):
        resolve_prompts("")
