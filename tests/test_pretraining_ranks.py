"""Which process of a DDP pretraining is the first one, from the variables each launcher sets."""

from __future__ import annotations

import pytest

from medvlp_bench.pretraining.ranks import is_first_process


@pytest.mark.parametrize("environment, first", [
    ({}, True),  # a single process
    ({"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1"}, True),  # a one-task SLURM job (a cell)
    ({"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "4"}, True),  # srun task 0
    ({"SLURM_PROCID": "1", "SLURM_LOCALID": "1"}, False),  # srun task 1 on the first node
    ({"SLURM_PROCID": "2", "SLURM_LOCALID": "0"}, False),  # srun task 0 of the second node
    ({"LOCAL_RANK": "0", "NODE_RANK": "0", "SLURM_PROCID": "0"}, True),  # Lightning's launcher, main process
    ({"LOCAL_RANK": "1", "NODE_RANK": "0", "SLURM_PROCID": "0"}, False),  # ... a process it started
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),  # the main process of the second node
    ({"RANK": "5", "LOCAL_RANK": "1"}, False),  # torchrun
    ({"LOCAL_RANK": ""}, True),  # set but empty: unset
])
def test_only_a_process_every_launcher_calls_rank_0_is_the_first(environment, first):
    assert is_first_process(environment) is first
