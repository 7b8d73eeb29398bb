"""Which process of a multi-process (DDP) pretraining this is, from the environment its launcher sets.

A DDP pretraining runs one process per device. Its processes are started either by Lightning's own launcher on one
machine (it sets ``LOCAL_RANK`` and ``NODE_RANK`` for the processes it starts), by ``srun`` on SLURM (one SLURM
task per process: ``SLURM_PROCID`` is the global rank, ``SLURM_LOCALID`` the rank on the node), or by
``torchrun`` (``RANK``). Only the first process (global rank 0) may take the model store's lock and write files
that are not Lightning's own: the others must go straight to the DDP rendezvous, where the first one waits for
them.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

#: environment variables that hold a process rank, per launcher (Lightning, torchrun, srun)
RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID", "SLURM_LOCALID")


def is_first_process(environ: Optional[Mapping[str, str]] = None) -> bool:
    """``True`` unless a launcher marked this process as another than the first: any of :data:`RANK_VARIABLES`
    set to a number other than 0 (a single process, without any of them, is the first)."""
    environ = os.environ if environ is None else environ
    return all(_rank(environ, name) == 0 for name in RANK_VARIABLES)


def _rank(environ: Mapping[str, str], name: str) -> int:
    text = environ.get(name, "").strip()
    try:
        return int(text) if text else 0
    except ValueError:
        return 0
