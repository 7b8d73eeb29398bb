"""MGCA: the method spec, a training step (losses, weights, gradients, frozen prototypes), pretraining end to end
through the pretraining service, resume, checkpoint reload and image-encoder loading."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from medvlp_bench.api import MedvlpError
from medvlp_bench_plugins.methods import mgca
from medvlp_bench_plugins.methods.mgca_module import MGCAModule
from vlp_fixtures import (  # noqa: F401 (one_cpu_thread: an autouse fixture)
    BATCH,
    checkpoint_state,
    encoder_state_in,
    grad_report,
    image_batch,
    method_context,
    one_cpu_thread,
    pretrain,
    texts,
    tiny_image_encoder,
    tiny_text_encoder,
    write_corpus,
)


def module(**options) -> MGCAModule:
    torch.manual_seed(0)
    options = {"num_prototypes": 16, "projection_hidden_dim": 32, **options}
    return MGCAModule(tiny_image_encoder(), tiny_text_encoder(corpus=texts(8)), image_encoder_name="resnet18",
                      text_encoder_name="tiny_bert", options=options)


@pytest.fixture(scope="module")
def spec():
    (found,) = mgca.medvlp_bench_methods()
    return found


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, spec):
    """One epoch of pretraining on the tiny corpus; returns (corpus, out_dir, model.ckpt)."""
    root = tmp_path_factory.mktemp("mgca")
    corpus = write_corpus(root / "images")
    out_dir = root / "run"
    return corpus, out_dir, pretrain(spec, corpus, out_dir, max_epochs=1)


def test_spec_names_defaults_and_options(spec):
    assert spec.name == "mgca" and spec.pretrain is not None
    assert {source: profile.text_encoder for source, profile in spec.pretraining_profiles.items()} == {
        "synthetic": "tiny_bert", "real": "bio_clinicalbert"}
    assert spec.corpus == "mimic_cxr" and spec.default_encoder == {"synthetic": "resnet18_64", "real": "resnet50"}
    options = {option.name: option.default for option in spec.options}
    assert (options["ita_weight"], options["local_weight"], options["prototype_weight"]) == (1.0, 1.0, 1.0)
    assert (options["ita_temperature"], options["local_temperature"], options["prototype_temperature"]) == (
        0.07, 0.1, 0.2)
    assert (options["num_prototypes"], options["sinkhorn_eps"], options["sinkhorn_iterations"]) == (500, 0.05, 3)
    assert options["freeze_prototypes_epochs"] == 1 and options["learning_rate"] == 2e-5
    assert not any(options[name] for name in options if name.startswith("reference_"))
    assert not options["gather_negatives"] and not options["distributed_sinkhorn"]


def test_training_step_gives_finite_loss_and_gradients_everywhere():
    model = module()
    losses = model.compute_losses(image_batch(), texts(BATCH))
    assert set(losses) == {"loss", "ita", "local", "word", "patch", "prototype"}
    assert all(torch.isfinite(value) for value in losses.values())
    losses["loss"].backward()
    for prefix in ("img_encoder_q.", "text_encoder_q.", "global_image_head.", "local_image_head.",
                   "global_text_head.", "local_text_head.", "prototype_layer."):
        has_gradient, finite = grad_report(model, prefix)
        assert has_gradient and finite, prefix


def test_loss_is_the_weighted_sum_of_its_parts():
    images, batch_texts = image_batch(), texts(BATCH)
    plain = module().compute_losses(images, batch_texts)
    weighted = module(ita_weight=2.0, local_weight=0.5, prototype_weight=3.0).compute_losses(images, batch_texts)
    expected = 2 * plain["ita"] + 0.5 * plain["local"] + 3 * plain["prototype"]
    assert torch.allclose(weighted["loss"], expected, rtol=1e-5)
    assert torch.allclose(plain["local"], plain["word"] + plain["patch"])
    ita_only = module(local_weight=0, prototype_weight=0).compute_losses(images, batch_texts)
    assert torch.equal(ita_only["loss"], ita_only["ita"])


class GradientRecorder(L.Callback):
    """Per epoch: did the prototypes get a gradient; were their rows unit length when the batch started."""

    def __init__(self):
        self.prototype_grad, self.unit_rows = {}, {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        weight = pl_module.prototype_layer.weight
        self.prototype_grad[trainer.current_epoch] = weight.grad is not None
        self.unit_rows[trainer.current_epoch] = torch.allclose(weight.detach().norm(dim=1), torch.ones(len(weight)))
        assert pl_module.img_encoder_q.model.conv1.weight.grad is not None


def test_prototypes_are_frozen_in_the_first_epoch_and_renormalised_each_batch(tmp_path):
    model = module()
    with torch.no_grad():
        model.prototype_layer.weight.mul_(3.0)
    pairs = list(zip(image_batch(), texts(BATCH)))
    recorder = GradientRecorder()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder],
                        default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(pairs, batch_size=BATCH))
    assert recorder.prototype_grad == {0: False, 1: True}
    assert recorder.unit_rows == {0: True, 1: True}


def test_reference_position_quirk_option_switches_the_text_encoder():
    assert module(reference_position_quirk=True).text_encoder_q.reference_position_quirk
    assert not module().text_encoder_q.reference_position_quirk


def test_reference_resnet_upsample_enlarges_the_local_token_grid():
    # 64 px -> layer3 4x4 tokens; upsampled to round(64 * 299 / 224) = 85 px -> layer3 6x6 tokens
    assert module().image_features(image_batch())[1].shape[1] == 16
    assert module(reference_resnet_upsample=True).image_features(image_batch())[1].shape[1] == 36


def test_pretrain_writes_checkpoints_config_and_vocabulary(first_run):
    corpus, out_dir, final = first_run
    assert final == out_dir / "model.ckpt" and final.is_file()
    assert (out_dir / "checkpoints" / "last.ckpt").is_file()
    config = json.loads((out_dir / "config.json").read_text())
    assert config["method"] == "mgca" and config["options"]["num_prototypes"] == 500
    hyper = checkpoint_state(final)["hyper_parameters"]
    assert hyper["method"] == "mgca" and (hyper["image_encoder"], hyper["text_encoder"]) == ("resnet18_64", "tiny_bert")
    assert hyper["vocabulary"] == tiny_text_encoder(corpus=list(corpus.train["text"])).vocabulary
    assert hyper["options"] == config["options"]


def test_load_image_encoder_gives_the_pretrained_weights(first_run, tmp_path, capsys, spec):
    _, _, final = first_run
    encoder = spec.load_image_encoder(method_context(final, tmp_path))
    expected = encoder_state_in(checkpoint_state(final)["state_dict"])
    loaded = encoder.state_dict()
    assert set(loaded) == set(expected)
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)
    assert "img_encoder_q.model." in capsys.readouterr().err


def test_load_image_encoder_without_checkpoint_is_an_error(spec, tmp_path):
    with pytest.raises(MedvlpError, match="--checkpoint"):
        spec.load_image_encoder(method_context(None, tmp_path))


def test_checkpoint_restores_without_the_corpus(first_run):
    _, _, final = first_run
    restored = MGCAModule.restore(final, lambda name: tiny_image_encoder(name), lambda name, vocabulary, corpus:
                                  tiny_text_encoder(vocabulary, corpus))
    state = checkpoint_state(final)["state_dict"]
    assert all(torch.equal(value, state[key]) for key, value in restored.state_dict().items())
    assert restored.text_encoder_q.vocabulary == checkpoint_state(final)["hyper_parameters"]["vocabulary"]


def test_resume_continues_from_the_last_epoch(first_run, spec):
    corpus, out_dir, _ = first_run
    first = checkpoint_state(out_dir / "checkpoints" / "last.ckpt")
    pretrain(spec, corpus, out_dir, max_epochs=2, resume=True)
    second = checkpoint_state(out_dir / "checkpoints" / "last.ckpt")
    assert second["epoch"] == first["epoch"] + 1
    assert first["global_step"] == 2 and second["global_step"] == 4
