"""Planning a suite: the runner's plan for every cell, one pretraining job per distinct pretraining, errors located
in the suite file, and job command lines that reproduce exactly the planned runs."""

from __future__ import annotations

import subprocess

import pytest

from medvlp_bench.cli import build_parser
from medvlp_bench.registry import load_registry
from medvlp_bench.runner import RunRequest, plan_run
from medvlp_bench.sweeps.commands import pretrain_command, run_command
from medvlp_bench.sweeps.planning import plan_suite, records_folder
from medvlp_bench.sweeps.suite import SuiteError, load_suite

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
                      method_options=dict(args.method_option))


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
    command = pretrain_command(job.request, job.cells[0].plan.encoder)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (job.out_dir / "model.ckpt").is_file()
    assert plan_suite(registry, _suite(tmp_path), tmp_path / "out").pretrain_jobs == []
