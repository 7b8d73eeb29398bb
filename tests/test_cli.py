"""The command line end to end on tiny synthetic data: run, skip, leaderboard, data check, errors."""

from __future__ import annotations

import json
import shutil

import pytest

from medvlp_bench.cli import main

TINY = ["--synthetic-scale", "0.1"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run ``random`` on ``rsna_cls`` once for the module (generates the tiny synthetic RSNA)."""
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "--method", "random", "--task", "rsna_cls", "--pct", "1.0", "--seed", "0", "1",
                 "--out", str(out), *TINY]) == 0
    return out


def test_run_writes_complete_records(results, capsys):
    records = sorted(results.glob("*.json"))
    assert len(records) == 2
    record = json.loads(records[0].read_text())
    for field in ("schema_version", "method", "task", "dataset", "data_source", "pct", "seed", "protocol",
                  "metrics", "primary_metric", "higher_is_better", "n_train", "n_val", "n_test", "checkpoint",
                  "checkpoint_sha256", "encoder", "config", "config_key", "split_hash", "provenance", "plugins"):
        assert field in record, field
    assert record["schema_version"] == 2 and record["plugins"]["task"]["name"] == "rsna_cls"
    assert record["plugins"]["method"]["distribution"] == "medvlp-bench"
    assert record["data_source"] == "synthetic" and record["encoder"]["arch"] == "resnet18"
    assert 0.0 <= record["metrics"]["auroc"] <= 1.0
    assert record["n_train"] + record["n_val"] + record["n_test"] == 150
    assert record["provenance"]["wall_seconds"] > 0


def test_second_run_is_skipped_unless_forced(results, capsys):
    capsys.readouterr()
    assert main(["run", "--method", "random", "--task", "rsna_cls", "--pct", "1.0", "--out", str(results), *TINY]) == 0
    assert "skipped" in capsys.readouterr().out
    assert len(list(results.glob("*.json"))) == 2


def test_leaderboard_renders_markdown_with_seed_statistics(results, capsys):
    capsys.readouterr()
    assert main(["leaderboard", "--runs", str(results), "--format", "md"]) == 0
    text = capsys.readouterr().out
    assert "## Data: synthetic" in text and "| random" in text and "(2)" in text


def test_unknown_method_exits_2_with_suggestion_and_no_traceback(capsys):
    assert main(["run", "--method", "randm", "--task", "rsna_cls", *TINY]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'random'" in err and "imagenet" in err and "Traceback" not in err


def test_unknown_task_exits_2(capsys):
    assert main(["run", "--method", "random", "--task", "rsna_clf", *TINY]) == 2
    assert "Did you mean 'rsna_cls'" in capsys.readouterr().err


def test_imagenet_without_local_weights_says_what_to_do(results, capsys):
    assert main(["run", "--method", "imagenet", "--task", "rsna_cls", "--out", str(results), *TINY]) == 1
    err = capsys.readouterr().err
    assert "resnet18-f37072fd.pth" in err and "not in the local torch cache" in err


def test_corrupted_dicom_and_missing_file_are_reported_with_file_and_row(results, tmp_path, capsys):
    from medvlp_bench.data.locations import synthetic_root

    copy = tmp_path / "rsna"
    shutil.copytree(synthetic_root(0, 0.1) / "rsna-pneumonia", copy)
    dicoms = sorted((copy / "stage_2_train_images").glob("*.dcm"))
    dicoms[0].write_bytes(b"corrupted")
    assert main(["data", "check", "rsna", "--dataset-path", f"rsna={copy}"]) == 1
    out = capsys.readouterr().out
    assert dicoms[0].name in out

    dicoms[1].unlink()
    assert main(["run", "--method", "random", "--task", "rsna_cls", "--dataset-path", f"rsna={copy}",
                 "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "stage_2_train_labels.csv" in err and "row" in err and dicoms[1].stem in err


def test_corrupted_image_inside_the_image_cache_names_csv_row(results, tmp_path, capsys):
    from medvlp_bench.data.locations import synthetic_root

    copy = tmp_path / "rsna"
    shutil.copytree(synthetic_root(0, 0.1) / "rsna-pneumonia", copy)
    victim = sorted((copy / "stage_2_train_images").glob("*.dcm"))[3]
    victim.write_bytes(b"corrupted")
    assert main(["run", "--method", "random", "--task", "rsna_cls", "--dataset-path", f"rsna={copy}",
                 "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "stage_2_train_labels.csv, row" in err and victim.name in err and "cannot decode DICOM" in err


def test_plugins_json_lists_everything_with_origins(capsys):
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {(row["kind"], row["name"]): row["origin"] for row in listing["plugins"]}
    for key in [("method", "random"), ("method", "imagenet"), ("task", "rsna_cls"), ("task", "chexpert_cls"),
                ("task", "covidx_cls"), ("dataset", "mimic_cxr"), ("encoder", "resnet50")]:
        assert names[key] == "built-in", key


def test_plugins_json_shows_declared_options_of_methods_and_protocols(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {(row["kind"], row["name"]): row for row in json.loads(capsys.readouterr().out)["plugins"]}
    mgca = {option["name"]: option for option in rows[("method", "mgca")]["options"]}
    assert mgca["ita_temperature"]["default"] == 0.07 and mgca["ita_temperature"]["type"] == "float"
    assert mgca["ita_temperature"]["help"]
    probe = rows[("protocol", "linear_probe")]
    assert {option["name"]: option["default"] for option in probe["options"]}["lr"] == 5e-4
    assert "auroc" in probe["metrics"] and "binary" in probe["targets"] and probe["protocol_version"]
    assert rows[("method", "random")]["options"] == []


def test_run_options_reach_the_protocol_and_the_config(results, tmp_path, capsys):
    out = tmp_path / "opt"
    assert main(["run", "--method", "random", "--task", "rsna_cls", "--pct", "1.0", "--out", str(out),
                 "--option", "max_epochs=2", *TINY]) == 0
    record = json.loads(next(out.glob("*.json")).read_text())
    assert record["config"]["hparams"]["max_epochs"] == 2
    assert record["details"]["hparams"]["max_epochs"] == 2 and record["details"]["epochs_trained"] <= 2


def test_unknown_dataset_path_name_exits_2(capsys):
    assert main(["run", "--method", "random", "--task", "rsna_cls", "--dataset-path", "rnsa=/nowhere", *TINY]) == 2
    assert "Did you mean 'rsna'" in capsys.readouterr().err


def test_a_misspelt_method_option_fails_before_any_work_naming_the_declared_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDVLP_HOME", str(tmp_path / "home"))
    assert main(["pretrain", "--method", "convirt", "--option", "temprature=0.5", *TINY]) == 1
    assert "--option temprature: unknown option of method 'convirt' (did you mean temperature?)" in (
        capsys.readouterr().err)
    assert main(["run", "--method", "convirt", "--task", "rsna_cls", "--method-option", "temprature=0.5",
                 "--out", str(tmp_path / "out"), *TINY]) == 1
    assert "--method-option temprature" in capsys.readouterr().err
    assert not (tmp_path / "home").exists() and not (tmp_path / "out").exists()


def test_a_pretraining_ended_by_sigterm_exits_as_terminated_and_resumes(tmp_path):
    """Lightning ends a fit on SIGTERM (scancel, a SLURM requeue or time limit) with ``SystemExit`` (status 0);
    `pretrain` ends as terminated by the signal instead, without a final model, so a sweep reruns it (and SLURM's
    afterok does not start its cells), leaving its last epoch's checkpoint for ``--resume``."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    home = tmp_path / "home"
    command = [sys.executable, "-m", "medvlp_bench.cli", "pretrain", "--method", "convirt", "--epochs", "300",
               "--accelerator", "cpu", "--data", "synthetic", "--synthetic-scale", "0.05", "--out",
               str(tmp_path / "model"), "--resume"]
    environment = {**os.environ, "MEDVLP_HOME": str(home), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "model" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()[1][-2000:]
    time.sleep(1.0)  # a few more epochs
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGTERM, error[-2000:]
    assert "stopped by SIGTERM" in error and not (tmp_path / "model" / "model.ckpt").exists()
    stopped_at = torch.load(last, weights_only=False)["epoch"]
    assert 0 <= stopped_at < 299


def test_a_run_ended_by_sigterm_while_it_pretrains_exits_as_terminated_without_a_record(tmp_path):
    """A `run` whose method pretrains on first use, stopped by SIGTERM during that pretraining, ends as terminated
    by the signal (not Lightning's status 0) and writes no record, so a sweep runs the cell again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    command = [sys.executable, "-m", "medvlp_bench.cli", "run", "--method", "convirt", "--task", "rsna_cls",
               "--pretrain-epochs", "300", "--data", "synthetic", "--synthetic-scale", "0.05", "--out",
               str(tmp_path / "results")]
    environment = {**os.environ, "MEDVLP_HOME": str(home), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while (not list((home / "models").glob("convirt/*/checkpoints/last.ckpt")) and process.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()[1][-2000:]
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGTERM, error[-2000:]
    assert "run stopped by SIGTERM" in error and not list((tmp_path / "results").glob("*.json"))
