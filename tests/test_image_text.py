"""The core's image-text seam: ImageTextModel delegation and default score, ImageTextProtocolSpec, the refusal."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medvlp_bench.api import ImageEncoder, ImageTextModel, ImageTextProtocolSpec, MedvlpError, MethodSpec, ProtocolSpec
from medvlp_bench.image_text import needs_image_text_model, require_image_text_model


class Tower(ImageEncoder):
    input_size, mean, std, global_dim, arch = 32, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), 3, "tower"

    def global_features(self, x):
        return x.mean(dim=(2, 3))


class Model(ImageTextModel):
    embedding_dim = 3

    def embed_images(self, x):
        return F.normalize(self.global_features(x), dim=-1)

    def embed_texts(self, texts):
        return F.normalize(torch.tensor([[float(len(text)), 1.0, 0.0] for text in texts]), dim=-1)


def test_an_image_text_model_is_its_image_towers_encoder_and_scores_by_cosine():
    model = Model(Tower())
    assert (model.input_size, model.mean, model.std, model.global_dim, model.arch) == (
        32, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), 3, "tower")
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), x.mean(dim=(2, 3)))
    images, texts = model.image_features(x), model.text_features(["ab", "abcd", "a"])
    assert torch.allclose(model.similarity(images, texts), model.embed_images(x) @ model.embed_texts(
        ["ab", "abcd", "a"]).T)
    assert model.describe()["embedding_dim"] == 3 and model.describe()["own_similarity"] is False


def test_only_image_text_protocols_ask_for_the_image_text_model():
    run = lambda inputs: None  # noqa: E731
    assert needs_image_text_model(ImageTextProtocolSpec(name="z", description="", run=run))
    assert not needs_image_text_model(ProtocolSpec(name="p", description="", run=run))


def test_a_method_without_a_text_tower_is_refused_naming_those_with_one():
    method = MethodSpec(name="plain", description="", load_image_encoder=lambda context: None)
    with pytest.raises(MedvlpError, match=r"'plain' has no text tower: task 't' \(protocol 'z'\).*: a, b$"):
        require_image_text_model(method, "t", "z", ["b", "a"])
    require_image_text_model(MethodSpec(name="vl", description="", load_image_encoder=lambda c: None,
                                        load_image_text_model=lambda c: None), "t", "z", [])
