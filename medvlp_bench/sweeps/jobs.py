"""The jobs of a sweep, as executors see them: a command line, a log file, and the job it waits for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Job:
    """One process to run: a pretraining (``kind="pretrain"``) or a cell (``kind="cell"``).

    ``after`` is the id of the job that must succeed first (a cell's pretraining), or ``None``; ``processes``: the
    processes per node the command starts (a DDP pretraining: one per device), which the local executor gives as
    many slots.
    """

    id: str
    kind: str
    command: tuple[str, ...]
    log: Path
    after: Optional[str] = None
    processes: int = 1


@dataclass(frozen=True)
class JobResult:
    """How a job ended: ``ok``; ``reason`` says why not (exit status, signal, failed dependency); ``seconds`` of
    wall time (0 when it never started); ``interrupted`` when a signal, not an error, ended it."""

    job: Job
    ok: bool
    seconds: float
    reason: str = ""
    interrupted: bool = False


def exit_reason(returncode: int) -> tuple[str, bool]:
    """``(reason, interrupted)`` for a process's return code (negative: killed by that signal)."""
    if returncode < 0:
        return f"killed by signal {-returncode}", True
    return f"exit status {returncode}", False
