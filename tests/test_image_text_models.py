"""The methods' image-text models: GLoRIA's local score, the random towers, the own-checkpoint loader."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medvlp_bench.api import ImageTextModel, MethodContext
from medvlp_bench.registry import load_registry
from medvlp_bench_plugins.methods.gloria_losses import gloria_local_loss
from medvlp_bench_plugins.methods.image_text_loaders import character_vocabulary, load_random_image_text_model
from medvlp_bench_plugins.methods.image_text_models import gloria_local_scores

TEXTS = ["small right pleural effusion.", "the heart is enlarged.", "no pneumothorax."]


def context(registry, seed: int = 0, checkpoint=None) -> MethodContext:
    return MethodContext(encoder="resnet18_64", build_encoder=lambda name: registry.get("encoder", name).build(),
                         load_imagenet=lambda name, module: None, checkpoint=checkpoint, seed=seed,
                         data_source="synthetic", home=None)


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_gloria_local_scores_are_the_scores_of_gloria_local_loss(aggregation):
    torch.manual_seed(0)
    regions, words = torch.randn(4, 9, 8), torch.randn(4, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    scores = gloria_local_scores(regions, words, mask, aggregation=aggregation)
    loss = gloria_local_loss(regions, words, mask, aggregation=aggregation)
    targets = torch.arange(4)
    assert float(F.cross_entropy(10.0 * scores, targets)) == pytest.approx(float(loss.image_to_text), rel=1e-5)
    assert float(F.cross_entropy(10.0 * scores.T, targets)) == pytest.approx(float(loss.text_to_image), rel=1e-5)


def test_random_towers_are_seeded_normalised_and_tokenise_without_unknowns():
    registry = load_registry()
    first, again, other = (load_random_image_text_model(context(registry, seed)) for seed in (0, 0, 1))
    assert isinstance(first, ImageTextModel) and not first.training
    images = torch.randn(2, 3, first.input_size, first.input_size)
    with torch.no_grad():
        embeddings = first.embed_texts(TEXTS)
        assert torch.equal(embeddings, again.embed_texts(TEXTS))
        assert not torch.allclose(embeddings, other.embed_texts(TEXTS))
        assert torch.linalg.norm(embeddings, dim=1).numpy() == pytest.approx([1.0] * 3, abs=1e-5)
        assert torch.linalg.norm(first.embed_images(images), dim=1).numpy() == pytest.approx([1, 1], abs=1e-5)
    ids = first.text_encoder.tokenize(TEXTS)["input_ids"]
    assert not (ids == character_vocabulary().index("[UNK]")).any()


def tiny_own_checkpoint(registry, tmp_path, module_name: str, class_name: str, options: dict):
    """A checkpoint as ``medvlp-bench pretrain`` writes it (state_dict + hyper_parameters), untrained."""
    import importlib

    from medvlp_bench_plugins.encoders.bert_text import build_tiny_bert
    from medvlp_bench_plugins.methods.vlp_method import vlp_image_encoder

    module_class = getattr(importlib.import_module(f"medvlp_bench_plugins.methods.{module_name}"), class_name)
    torch.manual_seed(0)
    module = module_class(
        vlp_image_encoder(lambda name: registry.get("encoder", name).build(), "resnet18_64"),
        build_tiny_bert(None, TEXTS * 3), image_encoder_name="resnet18_64", text_encoder_name="tiny_bert",
        options=options,
    ).eval()
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return module, path


def test_an_own_mgca_checkpoint_gives_the_trained_modules_embeddings(tmp_path):
    from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader
    from medvlp_bench_plugins.methods.vlp_module import masked_mean

    registry = load_registry()
    module, path = tiny_own_checkpoint(registry, tmp_path, "mgca_module", "MGCAModule",
                                       {"projection_hidden_dim": 16, "embedding_dim": 8, "num_prototypes": 4,
                                        "report_pooling": "mean"})
    model = image_text_loader("mgca")(context(registry, checkpoint=path))
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        text = module.encode_text(TEXTS)
        expected_text = F.normalize(module.global_text_head(masked_mean(text.features.tokens,
                                                                        text.tokens["attention_mask"])), dim=-1)
        expected_image = F.normalize(module.global_image_head(module.img_encoder_q.global_features(images)), dim=-1)
        assert torch.allclose(model.embed_texts(TEXTS), expected_text, atol=1e-6)
        assert torch.allclose(model.embed_images(images), expected_image, atol=1e-6)
    assert model.embedding_dim == 8 and model.describe()["report_pooling"] == "mean"


def test_an_own_gloria_checkpoint_scores_with_its_local_score(tmp_path):
    from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader

    registry = load_registry()
    _, path = tiny_own_checkpoint(registry, tmp_path, "gloria_module", "GloriaModule", {})
    model = image_text_loader("gloria")(context(registry, checkpoint=path))
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        image_features, text_features = model.image_features(images), model.text_features(TEXTS)
        scores = model.similarity(image_features, text_features)
        cosine = image_features[0] @ text_features[0].T
        local = gloria_local_scores(image_features[1], text_features[1], text_features[2])
    assert model.own_similarity and scores.shape == (2, 3)
    assert torch.allclose(scores, (cosine + local / 5.0) / 2, atol=1e-5)


def test_an_own_gloria_checkpoint_with_embedding_norms_embeds_as_the_trained_module(tmp_path):
    from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader
    from medvlp_bench_plugins.methods.vlp_module import masked_mean

    registry = load_registry()
    module, path = tiny_own_checkpoint(registry, tmp_path, "gloria_module", "GloriaModule",
                                       {"embedding_batch_norm": True})
    images = torch.randn(4, 3, 64, 64)
    with torch.no_grad():  # running statistics away from (0, 1), as after pretraining; saved again
        for norm in module.embedding_norms.children():
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
        model = image_text_loader("gloria")(context(registry, checkpoint=path))
        text = module.encode_text(TEXTS)
        report = masked_mean(text.features.tokens, text.tokens["attention_mask"])
        expected_text = F.normalize(module.embedding_norms.report(report), dim=-1)
        image_global, _ = module.image_embedders(*module.image_features(images))
        expected_image = F.normalize(module.embedding_norms.image(image_global), dim=-1)
        assert torch.allclose(model.embed_texts(TEXTS), expected_text, atol=1e-5)
        assert torch.allclose(model.embed_images(images), expected_image, atol=1e-5)
        unnormalised = F.normalize(report, dim=-1)
    assert not torch.allclose(expected_text, unnormalised, atol=1e-2)


def test_a_checkpoint_pretrained_with_another_encoder_is_refused_in_one_line(tmp_path):
    from medvlp_bench.api import MedvlpError
    from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader

    registry = load_registry()
    _, path = tiny_own_checkpoint(registry, tmp_path, "convirt_module", "ConVIRTModule",
                                  {"projection_hidden_dim": 16, "embedding_dim": 8})
    wrong = MethodContext(**{**context(registry, checkpoint=path).__dict__, "encoder": "resnet18"})
    with pytest.raises(MedvlpError, match="--encoder resnet18_64"):
        image_text_loader("convirt")(wrong)
