"""The shared vision-language module: option checking, the warm-up cosine schedule, the optimiser, one-pass image
features, hyper-parameters, and the pretraining driver's seeding."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch

from medvlp_bench.api import ImageEncoder, MedvlpError
from medvlp_bench_plugins.methods.convirt_module import ConVIRTModule
from medvlp_bench_plugins.methods.vlp_module import (
    local_token_dim,
    resolve_options,
    warmup_cosine_factor,
)
from vlp_fixtures import (  # noqa: F401 (one_cpu_thread: an autouse fixture)
    image_batch,
    one_cpu_thread,
    texts,
    tiny_image_encoder,
    tiny_text_encoder,
)

DEFAULTS = {"rate": 0.1, "count": 3, "flag": False, "pair": [0.1, 0.9], "mode": "sum"}


def test_resolve_options_fills_defaults_and_converts():
    assert resolve_options("m", DEFAULTS, {}) == DEFAULTS
    resolved = resolve_options("m", DEFAULTS, {"rate": 1, "pair": (0.2, 0.8), "flag": True})
    assert resolved["rate"] == 1.0 and isinstance(resolved["rate"], float)
    assert resolved["pair"] == [0.2, 0.8] and resolved["flag"] is True


@pytest.mark.parametrize("given, message", [
    ({"rte": 0.2}, "unknown m option"),
    ({"count": 2.5}, "option count"),
    ({"flag": 1}, "option flag"),
    ({"rate": "fast"}, "option rate"),
    ({"pair": [0.1]}, "option pair"),
])
def test_resolve_options_rejects_unknown_names_and_wrong_types(given, message):
    with pytest.raises(MedvlpError, match=message):
        resolve_options("m", DEFAULTS, given)


def test_warmup_cosine_schedule():
    factor = partial(warmup_cosine_factor, warmup_steps=4, total_steps=10, min_ratio=0.01)
    assert factor(0) == pytest.approx(0.01)
    assert factor(2) == pytest.approx(0.01 + 0.99 * 0.5)
    assert factor(4) == pytest.approx(1.0)
    assert factor(7) == pytest.approx(0.01 + 0.99 * (1 + math.cos(math.pi / 2)) / 2)
    assert factor(10) == pytest.approx(0.01) and factor(12) == pytest.approx(0.01)
    values = [factor(step) for step in range(11)]
    assert values[:5] == sorted(values[:5]) and values[4:] == sorted(values[4:], reverse=True)


def module() -> ConVIRTModule:
    torch.manual_seed(0)
    return ConVIRTModule(tiny_image_encoder(), tiny_text_encoder(corpus=texts(8)), image_encoder_name="resnet18",
                         text_encoder_name="tiny_bert", options={"learning_rate": 1e-3})


def test_optimiser_is_adamw_with_a_per_step_warmup_cosine_schedule():
    model = module()
    model.trainer = SimpleNamespace(estimated_stepping_batches=10)
    configured = model.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW) and scheduler["interval"] == "step"
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == 0.05
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler["scheduler"].step()
    assert rates[0] == pytest.approx(1e-8) and rates[4] == pytest.approx(1e-3) and max(rates) == rates[4]


def test_hyper_parameters_hold_names_vocabulary_and_options():
    model = module()
    assert model.hparams["method"] == "convirt"
    assert (model.hparams["image_encoder"], model.hparams["text_encoder"]) == ("resnet18", "tiny_bert")
    assert model.hparams["vocabulary"] == model.text_encoder_q.vocabulary
    assert model.hparams["options"]["learning_rate"] == 1e-3 and model.hparams["options"]["temperature"] == 0.07


def test_resnet_features_come_from_one_pass_and_match_the_encoder_interface():
    encoder = tiny_image_encoder().eval()
    images = image_batch()
    global_features, local_tokens = encoder.global_and_local(images)
    assert torch.allclose(global_features, encoder.global_features(images), atol=1e-6)
    assert torch.allclose(local_tokens, encoder.local_tokens(images), atol=1e-6)
    assert local_tokens.shape == (4, 16, 256)


class FlatEncoder(ImageEncoder):
    """A non-ResNet encoder: patches of 8x8 pixels as tokens, their mean as the global feature."""

    input_size, global_dim = 32, 192

    def local_tokens(self, x):
        return x.unfold(2, 8, 8).unfold(3, 8, 8).permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], 16, 192)

    def global_features(self, x):
        return self.local_tokens(x).mean(dim=1)


def test_other_encoders_default_to_asking_for_each_output():
    encoder = FlatEncoder()
    global_features, local_tokens = encoder.global_and_local(torch.randn(2, 3, 32, 32))
    assert global_features.shape == (2, 192) and local_tokens.shape == (2, 16, 192)
    assert local_token_dim(encoder) == 192


def test_local_token_dim_keeps_the_training_mode():
    encoder = tiny_image_encoder().train()
    assert local_token_dim(encoder) == 256 and encoder.training
