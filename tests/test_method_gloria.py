"""GLoRIA: the method spec, a training step (global + local losses, weights, the [CLS]-as-word quirk),
pretraining end to end, and loading image encoders from our checkpoints and from GLoRIA's release layout."""

from __future__ import annotations

import pytest
import torch

from medvlp_bench_plugins.methods import gloria
from medvlp_bench_plugins.methods.gloria_module import GloriaModule
from medvlp_bench_plugins.methods.vlp_module import masked_mean
from vlp_fixtures import (  # noqa: F401 (one_cpu_thread: an autouse fixture)
    BATCH,
    checkpoint_state,
    encoder_state_in,
    grad_report,
    image_batch,
    method_context,
    one_cpu_thread,
    perturbed_state,
    pretrain,
    texts,
    tiny_image_encoder,
    tiny_text_encoder,
    write_corpus,
)


@pytest.fixture(scope="module")
def spec():
    (found,) = gloria.medvlp_bench_methods()
    return found


def module(**options) -> GloriaModule:
    torch.manual_seed(0)
    return GloriaModule(tiny_image_encoder(), tiny_text_encoder(corpus=texts(8)), image_encoder_name="resnet18",
                        text_encoder_name="tiny_bert", options=options)


def test_spec_names_and_defaults(spec):
    assert spec.name == "gloria" and spec.pretrain is not None
    assert {source: profile.text_encoder for source, profile in spec.pretraining_profiles.items()} == {
        "synthetic": "tiny_bert", "real": "bio_clinicalbert"}
    assert spec.corpus == "mimic_cxr" and spec.default_encoder == {"synthetic": "resnet18_64", "real": "resnet50"}
    options = {option.name: option.default for option in spec.options}
    assert (options["region_attention_scale"], options["word_match_scale"], options["logit_scale"]) == (4.0, 5.0, 10.0)
    assert (options["global_weight"], options["local_weight"]) == (1.0, 1.0)


def test_embedders_project_the_image_to_the_text_width():
    model = module()
    embedders = model.image_embedders
    assert embedders.global_embedder.in_features == 512 and embedders.local_embedder.in_features == 256
    assert embedders.global_embedder.out_features == embedders.local_embedder.out_features == 64
    assert embedders.local_embedder.bias is None


def test_training_step_gives_finite_loss_and_gradients_everywhere():
    model = module()
    losses = model.compute_losses(image_batch(), texts(BATCH))
    assert set(losses) == {"loss", "global", "local"}
    assert torch.allclose(losses["loss"], losses["global"] + losses["local"])
    losses["loss"].backward()
    for prefix in ("img_encoder_q.", "text_encoder_q.", "image_embedders.global_embedder.",
                   "image_embedders.local_embedder."):
        assert grad_report(model, prefix) == (True, True), prefix


def test_loss_weights_and_cls_as_word():
    images, batch_texts = image_batch(), texts(BATCH)
    plain = module().compute_losses(images, batch_texts)
    global_only = module(local_weight=0.0, global_weight=2.0).compute_losses(images, batch_texts)
    assert torch.equal(global_only["loss"], 2.0 * global_only["global"])
    assert torch.allclose(global_only["global"], plain["global"])
    with_cls = module(reference_cls_as_word=True).compute_losses(images, batch_texts)
    assert torch.allclose(with_cls["global"], plain["global"]) and not torch.allclose(with_cls["local"], plain["local"])


def test_masked_mean_ignores_padding():
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.equal(masked_mean(states, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_pretrain_then_load_image_encoder(tmp_path, spec):
    corpus = write_corpus(tmp_path / "images")
    final = pretrain(spec, corpus, tmp_path / "run")
    state = checkpoint_state(final)
    assert state["hyper_parameters"]["method"] == "gloria" and state["hyper_parameters"]["vocabulary"]
    loaded = spec.load_image_encoder(method_context(final, tmp_path)).state_dict()
    expected = encoder_state_in(state["state_dict"])
    assert set(loaded) == set(expected) and all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_loads_the_gloria_release_layout(tmp_path, spec):
    source = perturbed_state(tiny_image_encoder())
    release = {f"gloria.img_encoder.{key}": value for key, value in source.items()}
    release["gloria.img_encoder.global_embedder.weight"] = torch.zeros(768, 512)
    release["gloria.text_encoder.model.embeddings.word_embeddings.weight"] = torch.zeros(5, 4)
    path = tmp_path / "gloria.ckpt"
    torch.save({"state_dict": release}, path)
    loaded = spec.load_image_encoder(method_context(path, tmp_path)).state_dict()
    assert all(torch.equal(loaded[key], source[key]) for key in source)
