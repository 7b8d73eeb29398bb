"""The command lines of a sweep's jobs: ``medvlp-bench run`` for a cell, ``medvlp-bench pretrain`` for a pretraining.

Both run as ``python -m medvlp_bench.cli`` with the sweep's own interpreter, so a job uses the same installation
as the sweep wherever ``medvlp-bench`` is on the ``PATH`` or not. The pretraining command asks for exactly the
pretraining the cell's plan relies on (same method, corpus data, image encoder and epochs; every other setting at
the default that the runner's plan uses), so it lands in the model store under the plan's key.
"""

from __future__ import annotations

import json
import sys

from medvlp_bench.pretraining.service import PretrainPlan, pretrain_arguments
from medvlp_bench.runner import RunRequest

CLI = (sys.executable, "-m", "medvlp_bench.cli")


def _data_arguments(request: RunRequest) -> list[str]:
    if request.synthetic:
        return ["--data", "synthetic", "--synthetic-seed", str(request.synthetic_seed),
                "--synthetic-scale", repr(request.synthetic_scale)]
    arguments = ["--data-root", str(request.data_root)] if request.data_root is not None else []
    for name, folder in sorted(request.dataset_paths.items()):
        arguments += ["--dataset-path", f"{name}={folder}"]
    return arguments


def run_command(request: RunRequest) -> list[str]:
    """``medvlp-bench run`` for one cell (one seed) writing its record into ``request.out_dir``."""
    command = [*CLI, "run", "--method", request.method, "--task", request.task, "--pct", repr(request.pct),
               "--seed", str(request.seed), "--out", str(request.out_dir)]
    if request.encoder is not None:
        command += ["--encoder", request.encoder]
    if request.checkpoint is not None:
        command += ["--checkpoint", str(request.checkpoint)]
    if request.pretrain_epochs is not None:
        command += ["--pretrain-epochs", str(request.pretrain_epochs)]
    for name, value in sorted(request.hparams.items()):
        command += ["--option", f"{name}={json.dumps(value)}"]
    for name, value in sorted(request.method_options.items()):
        command += ["--method-option", f"{name}={json.dumps(value)}"]
    if (request.pretrain_nodes, request.pretrain_devices) != (1, 1):
        command += ["--pretrain-nodes", str(request.pretrain_nodes), "--pretrain-devices",
                    str(request.pretrain_devices)]
    return command + _data_arguments(request)


def pretrain_command(plan: PretrainPlan) -> list[str]:
    """``medvlp-bench pretrain ... --resume`` that trains ``plan`` (a cell's planned pretraining) into the model store
    under its key (:func:`~medvlp_bench.pretraining.service.pretrain_arguments`; above one process as Lightning DDP,
    started by ``srun`` on SLURM, by Lightning's launcher on one machine)."""
    return [*CLI, "pretrain", *pretrain_arguments(plan)]
