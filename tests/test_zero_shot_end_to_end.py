"""``medvlp-bench run`` on the zero-shot and retrieval tasks, tiny synthetic scale: random towers, a custom prompt
file, imagenet's one-line refusal, and checkpoints in each method's released layout (tiny shapes)."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
import torchvision
from transformers import BertConfig, BertModel

from medvlp_bench.cli import main
from medvlp_bench_plugins.methods.vlp_heads import GlobalProjectionHead

TINY = ["--synthetic-scale", "0.1", "--pct", "1.0"]
#: words of the prompts and reports, for the tiny Bio_ClinicalBERT stand-in's vocabulary
WORDS = ("the heart is enlarged pleural effusion edema atelectasis consolidation cardiomegaly pulmonary small "
         "large right left lung base lower upper lobe no pneumothorax mild moderate severe with a of in").split()


def run_record(out, *arguments) -> dict:
    assert main(["run", "--out", str(out), *TINY, *arguments]) == 0
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


def test_random_towers_run_zero_shot_with_the_tasks_prompts_and_with_a_given_file(tmp_path):
    record = run_record(tmp_path / "a", "--method", "random", "--task", "chexpert5x200_zs")
    assert record["primary_metric"] == "accuracy" and record["n_train"] == 0 and record["n_test"] > 0
    assert set(record["metrics"]) == {"accuracy", "f1_macro", "auroc"}
    assert all(0.0 <= value <= 1.0 for value in record["metrics"].values())
    details = record["details"]
    assert sum(details["images_per_class"].values()) == record["n_test"]
    assert len(details["selection_sha256"]) == 64 and details["prompts_per_class"] == [6] * 5
    prompts = tmp_path / "mine.json"
    prompts.write_text(json.dumps({name: [f"{name.lower()}."] for name in details["prompt_classes"]}))
    mine = run_record(tmp_path / "b", "--method", "random", "--task", "chexpert5x200_zs",
                      "--option", f"prompts={prompts}")
    assert mine["details"]["prompts_sha256"] == hashlib.sha256(prompts.read_bytes()).hexdigest()
    assert mine["details"]["prompts_sha256"] != details["prompts_sha256"]
    assert mine["details"]["selection_sha256"] == details["selection_sha256"]


def test_random_towers_run_report_retrieval(tmp_path):
    record = run_record(tmp_path, "--method", "random", "--task", "mimic_cxr_ret")
    assert record["primary_metric"] == "i2t_recall_at_10" and record["n_test"] > 0
    assert {f"{d}_recall_at_{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} == set(record["metrics"])
    assert record["metrics"]["i2t_recall_at_1"] <= record["metrics"]["i2t_recall_at_10"]


def test_random_towers_run_class_level_retrieval_against_the_prompts(tmp_path):
    record = run_record(tmp_path, "--method", "random", "--task", "chexpert5x200_ret")
    metrics, n_test = record["metrics"], record["n_test"]
    assert record["primary_metric"] == "i2t_precision_at_5" and record["details"]["text_queries"] == 30
    assert {"i2t_precision_at_5", "i2t_precision_at_10", "t2i_precision_at_5", "t2i_precision_at_10"} <= set(metrics)
    assert "i2t_precision_at_100" not in metrics  # 30 prompts: K = 100 exceeds the candidates
    assert ("t2i_precision_at_100" in metrics) is (n_test >= 100)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())


def test_imagenet_is_refused_in_one_line_before_any_data_is_read(fresh_home, capsys):
    assert main(["run", "--method", "imagenet", "--task", "chexpert5x200_zs", *TINY]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "'imagenet' has no text tower" in error[0] and "mgca" in error[0]
    assert not (fresh_home / "synthetic").exists()


def bio_clinicalbert_cache(root):
    """A Hugging Face hub cache holding a tiny stand-in for Bio_ClinicalBERT's tokenizer files."""
    snapshot = root / "models--emilyalsentzer--Bio_ClinicalBERT" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (root / "models--emilyalsentzer--Bio_ClinicalBERT" / "refs").mkdir()
    (root / "models--emilyalsentzer--Bio_ClinicalBERT" / "refs" / "main").write_text("0123abcd")
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "-", *WORDS]
    (snapshot / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                                "do_lower_case": True}))
    (snapshot / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return len(vocabulary)


def released_state(method: str, vocab_size: int) -> dict:
    """A tiny state dict in ``method``'s released layout (resnet18 backbone, 1-layer 64-wide BERT)."""
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=1, num_attention_heads=1,
                                intermediate_size=128, max_position_embeddings=128), add_pooling_layer=False)
    text = {key: value for key, value in bert.state_dict().items() if "token_type" not in key or method == "gloria"}
    backbone = torchvision.models.resnet18().state_dict()
    if method == "gloria":
        return {**{f"gloria.img_encoder.model.{k}": v for k, v in backbone.items()},
                "gloria.img_encoder.global_embedder.weight": torch.randn(64, 512),
                "gloria.img_encoder.global_embedder.bias": torch.randn(64),
                "gloria.img_encoder.local_embedder.weight": torch.randn(64, 256, 1, 1),
                **{f"gloria.text_encoder.model.{k}": v for k, v in text.items()}}
    image, tower = ("img_encoder_q", "text_encoder_q") if method == "mgca" else ("img_encoder", "text_encoder")
    heads = {f"{image}.global_embed.{k}": v for k, v in GlobalProjectionHead(512, 32, 16).state_dict().items()}
    heads |= {f"{tower}.global_embed.{k}": v for k, v in GlobalProjectionHead(64, 32, 16).state_dict().items()}
    return {**{f"{image}.model.{k}": v for k, v in backbone.items()}, **heads,
            **{f"{tower}.model.{k}": v for k, v in text.items()}, "prototype_layer.weight": torch.randn(4, 16)}


@pytest.mark.parametrize("method", ["mgca", "convirt", "gloria"])
def test_a_checkpoint_in_the_released_layout_gives_zero_shot_results(method, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    vocab_size = bio_clinicalbert_cache(tmp_path / "hub")
    checkpoint = tmp_path / f"{method}.ckpt"
    state = released_state(method, vocab_size)
    torch.save({"state_dict": state}, checkpoint)
    record = run_record(tmp_path / "out", "--method", method, "--task", "chexpert5x200_zs",
                        "--checkpoint", str(checkpoint))
    assert record["method"] == method and 0.0 <= record["metrics"]["accuracy"] <= 1.0
    assert record["encoder"]["weights_report"]["missing"] == 0
    assert record["encoder"]["text_encoder"]["source"] == f"{method} release checkpoint"
    assert record["encoder"]["own_similarity"] is (method == "gloria")
    err = capsys.readouterr().err
    assert ("prototype_layer.weight" in err) is (method == "mgca" or method == "convirt")


def test_a_released_text_tower_without_the_tokenizer_says_where_to_put_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    checkpoint = tmp_path / "mgca.ckpt"
    torch.save({"state_dict": released_state("mgca", 40)}, checkpoint)
    assert main(["run", "--method", "mgca", "--task", "chexpert5x200_zs", *TINY, "--out", str(tmp_path / "o"),
                 "--checkpoint", str(checkpoint)]) == 1
    assert "huggingface-cli download emilyalsentzer/Bio_ClinicalBERT" in capsys.readouterr().err


def test_an_undeclared_option_is_refused_with_the_declared_names(fresh_home, capsys):
    assert main(["run", "--method", "random", "--task", "chexpert5x200_zs", *TINY, "--option", "promts=x.json"]) == 1
    error = capsys.readouterr().err
    assert "did you mean prompts" in error and "similarity" in error
    assert not (fresh_home / "synthetic").exists()
