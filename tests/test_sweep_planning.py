"""Planning a suite: the runner's plan for every cell, one pretraining job per distinct pretraining, errors located
in the suite file, and job command lines that reproduce exactly the planned runs: also for a distributed (DDP)
pretraining, whose world size is part of its key, and for a pretraining on real data that the suite asks for."""

from __future__ import annotations

import re
import subprocess

import pytest

from medvlp_bench.cli import build_parser, pretrain_request
from medvlp_bench.data.synthetic_store import ensure_synthetic
from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.pretraining.service import plan_pretraining
from medvlp_bench.registry import load_registry
from medvlp_bench.runner import RunRequest, plan_run, run
from medvlp_bench.sweeps.commands import pretrain_command, run_command
from medvlp_bench.sweeps.planning import plan_suite, records_folder
from medvlp_bench.sweeps.suite import Resources, SuiteError, load_suite
from medvlp_bench.sweeps.sweep import SweepOptions, run_sweep

SUITE = """\
name: tiny
data:
  synthetic: {seed: 0, scale: 0.05}
encoder: resnet18_64
methods:
  random: {}
  mgca: {pretrain: {epochs: 1}, options: {ita_temperature: 0.1}}
tasks: [rsna_cls]
fractions: [0.5, 1.0]
seeds: [0, 1]
protocol_options:
  linear_probe: {max_epochs: 2}
"""


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _suite(tmp_path, text=SUITE):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return load_suite(path)


def test_plan_has_every_cell_and_one_pretraining_per_key(tmp_path, registry):
    plan = plan_suite(registry, _suite(tmp_path), tmp_path / "out")
    assert len(plan.cells) == 8 and len(plan.to_run) == 8 and plan.done == []
    assert [job.method for job in plan.pretrain_jobs] == ["mgca"]
    job = plan.pretrain_jobs[0]
    assert job.cells[0].plan.pretrain.config["options"]["ita_temperature"] == 0.1
    assert sorted(item.cell.id for item in job.cells) == sorted(
        f"mgca__rsna_cls__pct{pct}__seed{seed}" for pct in ("0.5", "1") for seed in (0, 1))
    assert all(item.plan.pretrain.key == job.key for item in job.cells)
    random_cell = next(item for item in plan.cells if item.cell.entry.method == "random")
    assert random_cell.pretrain is None and random_cell.plan.pretrain is None
    assert random_cell.request.hparams == {"max_epochs": 2}
    assert random_cell.request.out_dir == records_folder(tmp_path / "out")


@pytest.mark.parametrize("old, new, pattern", [
    ("  mgca: {pretrain", "  mgca: {method: mgcaa, pretrain", r"suite.yaml:7: methods.mgca: unknown method 'mgcaa' "
                                                                r"\(did you mean 'mgca'\?\)"),
    ("tasks: [rsna_cls]", "tasks: [rsna_clss]", r"suite.yaml:8: tasks\[0\]: unknown task 'rsna_clss'"),
    ("encoder: resnet18_64", "encoder: resnet19", r"suite.yaml:4: encoder: unknown encoder 'resnet19'"),
    ("{max_epochs: 2}", "{max_epoch: 2}", r"suite.yaml:12: protocol_options.linear_probe: option max_epoch: "
                                          r"unknown option"),
    ("  random: {}", "  imagenet: {}", r"suite.yaml:6: methods.imagenet: weights of method 'imagenet' "
                                       r"\(resnet18_64\) are missing: .*expected .*\.pth"),
    ("  random: {}", "  random: {method: convirt, checkpoint: /no/such.ckpt}",
     r"suite.yaml:6: methods.random: random__rsna_cls__pct0.5__seed0: checkpoint not found: /no/such.ckpt"),
])
def test_planning_errors_name_the_suite_line(tmp_path, registry, old, new, pattern):
    with pytest.raises(SuiteError, match=pattern):
        plan_suite(registry, _suite(tmp_path, SUITE.replace(old, new)), tmp_path / "out")


def _request_from_command(command: list[str]) -> RunRequest:
    """What ``medvlp-bench run`` builds from a command line (as :func:`medvlp_bench.cli.command_run` does)."""
    args = build_parser().parse_args(command[3:])
    assert len(args.seed) == 1
    return RunRequest(method=args.method, task=args.task, pct=args.pct, seed=args.seed[0], out_dir=args.out,
                      data_root=args.data_root, dataset_paths=dict(args.dataset_path),
                      synthetic=args.data == "synthetic", synthetic_seed=args.synthetic_seed,
                      synthetic_scale=args.synthetic_scale, encoder=args.encoder, checkpoint=args.checkpoint,
                      hparams=dict(args.option), pretrain_epochs=args.pretrain_epochs,
                      method_options=dict(args.method_option), pretrain_nodes=args.pretrain_nodes,
                      pretrain_devices=args.pretrain_devices)


def test_cell_command_plans_the_same_run(tmp_path, registry):
    plan = plan_suite(registry, _suite(tmp_path), tmp_path / "out")
    for item in plan.cells:
        command = run_command(item.request)
        assert command[1:4] == ["-m", "medvlp_bench.cli", "run"]
        assert plan_run(registry, _request_from_command(command)).key == item.plan.key


def test_pretraining_command_fills_the_planned_model_store_entry(tmp_path, registry):
    """Running the pretraining job's command stores the model under the key the cells' plans rely on, so a new
    plan needs no pretraining any more."""
    plan = plan_suite(registry, _suite(tmp_path), tmp_path / "out")
    job = plan.pretrain_jobs[0]
    command = pretrain_command(job.plan)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (job.out_dir / "model.ckpt").is_file()
    assert plan_suite(registry, _suite(tmp_path), tmp_path / "out").pretrain_jobs == []


def _planned_by_command(registry, command: list[str]):
    """The pretraining plan of a ``medvlp-bench pretrain`` command line (as the command itself makes it)."""
    args = build_parser().parse_args(command[3:])
    return plan_pretraining(registry, pretrain_request(args, registry))


def test_distributed_pretraining_is_planned_with_the_world_size_its_job_uses(tmp_path, registry, fresh_home):
    """With resources.pretraining {nodes: 2, devices: 2} the cells plan the 4-process pretraining: the key the
    job's DDP command writes (its global batch is 4 x the batch per process), not the single-process one (a home
    of its own: another test stores that one)."""
    suite = _suite(tmp_path)
    single = plan_suite(registry, suite, tmp_path / "out").pretrain_jobs[0]
    plan = plan_suite(registry, suite, tmp_path / "out", Resources(nodes=2, devices=2))
    [job] = plan.pretrain_jobs
    assert job.key != single.key
    config = job.cells[0].plan.pretrain.config
    assert config["global_batch_size"] == 4 * config["batch_size_per_device"]
    command = pretrain_command(job.plan)
    assert command[command.index("--num-nodes"):command.index("--num-nodes") + 6] == [
        "--num-nodes", "2", "--devices", "2", "--strategy", "ddp"]
    assert _planned_by_command(registry, command).key == job.key
    assert _planned_by_command(registry, pretrain_command(single.plan)).key == \
        single.key
    for item in plan.cells:
        cell_command = run_command(item.request)
        assert ("--pretrain-nodes" in cell_command) == (item.cell.entry.method == "mgca")
        assert plan_run(registry, _request_from_command(cell_command)).key == item.plan.key
        if item.cell.entry.method == "mgca":
            assert item.plan.pretrain.key == job.key


def test_gpus_give_one_process_each_and_a_flag_like_world_gives_the_same_key(tmp_path, registry, fresh_home):
    suite = _suite(tmp_path)
    by_gpus = plan_suite(registry, suite, tmp_path / "out", Resources(nodes=1, gpus=2)).pretrain_jobs[0]
    by_devices = plan_suite(registry, suite, tmp_path / "out", Resources(devices=2)).pretrain_jobs[0]
    assert by_gpus.key == by_devices.key and by_gpus.request.pretrain_devices == 2


def _real_suite(tmp_path, convirt: str) -> str:
    """A suite on 'real' data: the synthetic sets, which are written in each dataset's real raw layout."""
    rsna = ensure_synthetic(load_registry().get("dataset", "rsna"), 0, 0.05)
    mimic = ensure_synthetic(load_registry().get("dataset", "mimic_cxr"), 0, 0.05)
    return f"""\
name: real
data:
  paths: {{rsna: "{rsna}", mimic_cxr: "{mimic}"}}
encoder: resnet18_64
methods:
  random: {{}}
  convirt: {convirt}
tasks: [rsna_cls]
fractions: [1.0]
seeds: [0]
"""


def test_real_data_suite_pretrains_when_the_suite_asks_and_its_cells_only_look_it_up(tmp_path, registry):
    plan = plan_suite(registry, _suite(tmp_path, _real_suite(tmp_path, "{pretrain: {epochs: 2}}")), tmp_path / "out")
    [job] = plan.pretrain_jobs
    config = job.cells[0].plan.pretrain.config
    assert config["data_source"] == "real" and config["max_epochs"] == 2
    assert config["text_encoder"] == "bio_clinicalbert"  # the method's real profile
    assert {item.plan.data_source for item in plan.cells} == {"real"}
    command = pretrain_command(job.plan)
    assert "--dataset-path" in command and "--data" not in command
    assert _planned_by_command(registry, command).key == job.key
    with pytest.raises(WeightsNotFoundError, match=r"on real data .*never trains it itself.*medvlp-bench pretrain "
                                                   r"--method convirt --image-encoder resnet18_64 --epochs 2"):
        run(registry, job.cells[0].request)
    assert not records_folder(tmp_path / "out").exists()


def test_real_data_suite_without_an_explicit_pretraining_is_refused_at_its_line(tmp_path, registry):
    with pytest.raises(SuiteError, match=r"suite.yaml:7: methods.convirt: .*no weights for method 'convirt' on real "
                                         r"data"):
        plan_suite(registry, _suite(tmp_path, _real_suite(tmp_path, "{}")), tmp_path / "out")


def test_a_multi_node_pretraining_needs_the_slurm_executor_and_a_dry_run_says_so(tmp_path, registry):
    _suite(tmp_path)
    options = SweepOptions(tmp_path / "suite.yaml", dry_run=True, out=tmp_path / "out",
                           pretraining_resources={"nodes": 2, "devices": 2})
    with pytest.raises(MedvlpError, match="the pretraining asks for 2 nodes, which needs --executor slurm"):
        run_sweep(registry, options)
    with pytest.raises(MedvlpError, match=r"devices \(2\) must equal gpus \(4\)"):
        run_sweep(registry, SweepOptions(tmp_path / "suite.yaml", dry_run=True, out=tmp_path / "out",
                                         pretraining_resources={"gpus": 4, "devices": 2}))


def test_pretrain_flags_of_sweep_override_the_suite(tmp_path, registry, capsys):
    from medvlp_bench.cli import main

    _suite(tmp_path, SUITE + "resources:\n  pretraining: {devices: 3, cpus: 2}\n")
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "suite.yaml"), "--dry-run", "--out", str(out)]) == 0
    assert "on 1 node(s) x 3 process(es) (DDP)" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "suite.yaml"), "--dry-run", "--out", str(out),
                 "--pretrain-devices", "2"]) == 0
    assert "on 1 node(s) x 2 process(es) (DDP)" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "suite.yaml"), "--dry-run", "--pretrain-devices", "1"]) == 0
    assert "(DDP)" not in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "suite.yaml"), "--dry-run", "--pretrain-nodes", "0"]) == 1
    assert "--pretrain-nodes must be at least 1" in capsys.readouterr().err


def test_real_data_suite_without_the_corpus_folder_is_refused_instead_of_pretraining_on_synthetic_pairs(
        tmp_path, registry):
    text = _real_suite(tmp_path, "{pretrain: {epochs: 2}}")
    text = re.sub(r", mimic_cxr: [^}]*", "", text)
    with pytest.raises(SuiteError, match=r"suite.yaml:7: methods.convirt: .*synthetic default of its corpus "
                                         r"'mimic_cxr'.*data.paths.mimic_cxr"):
        plan_suite(registry, _suite(tmp_path, text), tmp_path / "out")
