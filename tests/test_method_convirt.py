"""ConVIRT: the method spec, a training step (the loss is InfoNCE of the projected global embeddings),
pretraining end to end, and loading image encoders from our checkpoints and from ConVIRT's release layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medvlp_bench.api import MedvlpError
from medvlp_bench_plugins.methods import convirt
from medvlp_bench_plugins.methods.contrastive_losses import info_nce_loss
from medvlp_bench_plugins.methods.convirt_module import ConVIRTModule
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
    (found,) = convirt.medvlp_bench_methods()
    return found


def module(**options) -> ConVIRTModule:
    torch.manual_seed(0)
    return ConVIRTModule(tiny_image_encoder(), tiny_text_encoder(corpus=texts(8)), image_encoder_name="resnet18",
                         text_encoder_name="tiny_bert", options={"projection_hidden_dim": 32, **options})


def test_spec_names_and_defaults(spec):
    assert spec.name == "convirt" and spec.pretrain is not None
    assert {source: profile.text_encoder for source, profile in spec.pretraining_profiles.items()} == {
        "synthetic": "tiny_bert", "real": "bio_clinicalbert"}
    assert spec.corpus == "mimic_cxr" and spec.default_encoder == {"synthetic": "resnet18_64", "real": "resnet50"}
    options = {option.name: option.default for option in spec.options}
    assert options["temperature"] == 0.07 and options["gather_negatives"] is False
    assert all(option.help for option in spec.options)


def test_training_step_is_infonce_of_the_projected_global_embeddings():
    model = module(temperature=0.2)
    images, batch_texts = image_batch(), texts(BATCH)
    torch.manual_seed(5)  # the same dropout draws in the recomputation below
    losses = model.compute_losses(images, batch_texts)
    assert set(losses) == {"loss"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    for prefix in ("img_encoder_q.", "text_encoder_q.", "global_image_head.", "global_text_head."):
        assert grad_report(model, prefix) == (True, True), prefix
    torch.manual_seed(5)
    with torch.no_grad():
        image = F.normalize(model.global_image_head(model.img_encoder_q.global_features(images)), dim=-1)
        text = F.normalize(model.global_text_head(model.encode_text(batch_texts).features.cls), dim=-1)
    assert torch.allclose(losses["loss"], info_nce_loss(image, text, 0.2), rtol=1e-5)


def test_mean_report_pooling_feeds_the_mean_token_state_to_the_text_head():
    model = module(report_pooling="mean")
    images, batch_texts = image_batch(), texts(BATCH)
    torch.manual_seed(5)
    losses = model.compute_losses(images, batch_texts)
    torch.manual_seed(5)
    with torch.no_grad():
        image = F.normalize(model.global_image_head(model.img_encoder_q.global_features(images)), dim=-1)
        encoded = model.encode_text(batch_texts)
        mask = encoded.tokens["attention_mask"].bool()
        report = torch.stack([states[keep].mean(dim=0) for states, keep in zip(encoded.features.tokens, mask)])
        text = F.normalize(model.global_text_head(report), dim=-1)
    assert not torch.allclose(report, encoded.features.cls)
    assert torch.allclose(losses["loss"], info_nce_loss(image, text, 0.07), rtol=1e-5)


def test_unknown_report_pooling_is_refused():
    with pytest.raises(MedvlpError, match="report_pooling must be one of cls, mean"):
        module(report_pooling="max")


def test_pretrain_then_load_image_encoder(tmp_path, spec):
    corpus = write_corpus(tmp_path / "images")
    final = pretrain(spec, corpus, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    state = checkpoint_state(final)
    assert state["hyper_parameters"]["method"] == "convirt" and state["hyper_parameters"]["vocabulary"]
    loaded = spec.load_image_encoder(method_context(final, tmp_path)).state_dict()
    expected = encoder_state_in(state["state_dict"])
    assert set(loaded) == set(expected) and all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_loads_the_convirt_release_layout(tmp_path, spec):
    source = perturbed_state(tiny_image_encoder())
    release = {f"img_encoder.{key}": value for key, value in source.items()}
    release["text_encoder.model.embeddings.word_embeddings.weight"] = torch.zeros(5, 4)
    path = tmp_path / "convirt.ckpt"
    torch.save({"state_dict": release}, path)
    loaded = spec.load_image_encoder(method_context(path, tmp_path)).state_dict()
    assert all(torch.equal(loaded[key], source[key]) for key in source)


def test_vlp_encoders_use_the_reference_normalisation():
    from medvlp_bench_plugins.encoders.torchvision_resnet import ResNetEncoder
    from medvlp_bench_plugins.methods.vlp_method import vlp_image_encoder

    encoder = vlp_image_encoder(lambda name: ResNetEncoder(name, 64), "resnet18")
    assert tuple(encoder.mean) == tuple(encoder.std) == (0.5, 0.5, 0.5)


def test_imported_checkpoint_counts_are_recorded_with_the_encoder(tmp_path, spec):
    import torch

    from medvlp_bench.specs import MethodContext
    from medvlp_bench_plugins.encoders.torchvision_resnet import ResNetEncoder
    from medvlp_bench_plugins.methods.vlp_method import load_image_encoder

    source = ResNetEncoder("resnet18", 64)
    path = tmp_path / "convirt.ckpt"
    torch.save({"state_dict": {f"img_encoder.{k}": v for k, v in source.state_dict().items()}}, path)
    context = MethodContext(encoder="resnet18", build_encoder=lambda name: ResNetEncoder(name, 64),
                            load_imagenet=lambda name, module: None, checkpoint=path, seed=0,
                            data_source="synthetic", home=tmp_path)
    described = load_image_encoder(context, "convirt", spec.checkpoint_layouts).describe()
    report = described["weights_report"]
    assert report["matched"] > 0 and report["missing"] == 0 and report["shape_mismatch"] == 0


def test_last_checkpoint_is_written_after_every_epoch_not_only_at_the_end(tmp_path, monkeypatch):
    """A killed pretraining resumes from its last finished epoch, so last.ckpt must exist after each epoch."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    import medvlp_bench.pretraining.fit as fit
    from medvlp_bench_plugins.methods.convirt import medvlp_bench_methods
    from vlp_fixtures import pretrain, write_corpus

    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    seen = []

    class LastCheckpointProbe(Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append(last.is_file())

    trainer_class = L.Trainer
    monkeypatch.setattr(fit.L, "Trainer", lambda *args, callbacks=(), **kwargs: trainer_class(
        *args, callbacks=[*callbacks, LastCheckpointProbe()], **kwargs))
    (method,) = medvlp_bench_methods()
    pretrain(method, write_corpus(tmp_path / "corpus"), tmp_path / "out", max_epochs=3)
    assert seen == [False, True, True]
