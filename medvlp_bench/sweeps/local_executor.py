"""The local executor: a ``concurrent.futures`` pool of slots, each running one job's process at a time.

Slots: with GPUs, one per GPU (the job sees only its GPU through ``CUDA_VISIBLE_DEVICES``); without, ``workers``
CPU slots that split the machine's cores between them (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` = cores // slots,
at least 1, so N parallel PyTorch processes do not each start one thread per core).

Each job runs as its own process (a crash stays in its cell), its output appended to its log file, under an
exclusive ``flock`` on ``DIR/locks/<job id>.lock`` that the process inherits: when a sweep is killed, a job it
started keeps its lock until it ends, so a second sweep waits for that job instead of running it twice.
A job whose ``after`` job failed is not started (reason: the failed dependency).

A job that starts several processes (a DDP pretraining with ``devices`` > 1: the same ``medvlp-bench pretrain``
command, whose Lightning launcher starts the other processes) takes as many slots, up to all of them: their GPUs
(``CUDA_VISIBLE_DEVICES`` = the slots' GPUs, comma-separated; more processes than GPUs is an error) or their
cores, split between its processes. Slots are taken by one job at a time, so two such jobs never hold part of the
slots each and wait for each other.
"""

from __future__ import annotations

import fcntl
import os
import queue
import subprocess
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from medvlp_bench.errors import MedvlpError
from medvlp_bench.sweeps.jobs import Job, JobResult, exit_reason
from medvlp_bench.sweeps.progress import Progress


def visible_gpus() -> list[str]:
    """Ids of the GPUs this process may use (``CUDA_VISIBLE_DEVICES`` order), empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [item.strip() for item in listed.split(",") if item.strip()][: torch.cuda.device_count()]
    return [str(index) for index in range(torch.cuda.device_count())]


def slot_environments(workers: int, gpus: Sequence[str], cores: Optional[int] = None) -> list[dict[str, str]]:
    """The environment overrides of each slot (see the module docstring)."""
    cores = cores or os.cpu_count() or 1
    if gpus:
        threads = max(1, cores // len(gpus))
        return [{"CUDA_VISIBLE_DEVICES": gpu, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                for gpu in gpus]
    threads = max(1, cores // max(1, workers))
    return [{"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} for _ in range(max(1, workers))]


class LocalExecutor:
    """Runs jobs on this machine (see the module docstring)."""

    def __init__(self, workers: int = 1, gpus: Optional[Sequence[str]] = None, locks: Optional[Path] = None):
        gpus = visible_gpus() if gpus is None else list(gpus)
        self.environments = slot_environments(workers, gpus)
        self.locks = locks
        self._taking = threading.Lock()

    @property
    def slots(self) -> int:
        return len(self.environments)

    def run(self, jobs: Sequence[Job], progress: Progress) -> list[JobResult]:
        """Run ``jobs`` (each after its ``after`` job succeeded) and return how each ended, in ``jobs`` order."""
        gpu_slots = any("CUDA_VISIBLE_DEVICES" in environment for environment in self.environments)
        for job in jobs:
            if gpu_slots and job.processes > self.slots:
                raise MedvlpError(f"{job.id} starts {job.processes} processes, one per GPU, but this machine shows "
                                  f"{self.slots} GPU(s) (CUDA_VISIBLE_DEVICES)")
        free: queue.SimpleQueue = queue.SimpleQueue()
        for environment in self.environments:
            free.put(environment)
        waiting = {job.id: job for job in jobs if job.after is not None}
        results: dict[str, JobResult] = {}
        with ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="sweep-slot") as pool:
            running: dict[Future, Job] = {}

            def submit(job: Job) -> None:
                running[pool.submit(self._run_one, job, free, progress)] = job

            for job in jobs:
                if job.after is None:
                    submit(job)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    result = future.result()
                    results[job.id] = result
                    for dependent in [item for item in waiting.values() if item.after == job.id]:
                        del waiting[dependent.id]
                        if result.ok:
                            submit(dependent)
                        else:
                            skipped = JobResult(dependent, False, 0.0, f"its pretraining failed ({job.log})")
                            results[dependent.id] = skipped
                            progress.finished(skipped)
        for job in waiting.values():
            results[job.id] = JobResult(job, False, 0.0, f"its dependency {job.after} was not run")
        return [results[job.id] for job in jobs]

    def _run_one(self, job: Job, free: queue.SimpleQueue, progress: Progress) -> JobResult:
        with self._taking:
            taken = [free.get() for _ in range(min(job.processes, self.slots))]
        try:
            progress.started(job)
            result = run_logged(job, {**os.environ, **job_environment(taken, job.processes)}, self.locks)
            progress.finished(result)
            return result
        finally:
            for environment in taken:
                free.put(environment)


def job_environment(slots: Sequence[dict[str, str]], processes: int) -> dict[str, str]:
    """The environment overrides of a job holding ``slots`` that starts ``processes`` processes: the slots' GPUs,
    and their threads split between the processes (at least 1 each)."""
    if len(slots) == 1 and processes == 1:
        return dict(slots[0])
    threads = max(1, sum(int(slot["OMP_NUM_THREADS"]) for slot in slots) // processes)
    merged = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    gpus = [slot["CUDA_VISIBLE_DEVICES"] for slot in slots if "CUDA_VISIBLE_DEVICES" in slot]
    if gpus:
        merged["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return merged


def run_logged(job: Job, environment: dict[str, str], locks: Optional[Path]) -> JobResult:
    """Run ``job``'s command with its output appended to its log, under its lock file (module docstring)."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    lock_handle = None
    if locks is not None:
        locks.mkdir(parents=True, exist_ok=True)
        lock_handle = open(locks / f"{job.id}.lock", "a")
    try:
        with open(job.log, "a", encoding="utf-8") as log:
            if lock_handle is not None:
                try:
                    fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.write(f"=== {_now()} another process runs this job; waiting for it\n")
                    log.flush()
                    fcntl.flock(lock_handle, fcntl.LOCK_EX)
            log.write(f"=== {_now()} {' '.join(job.command)}\n")
            log.flush()
            start = time.monotonic()
            process = subprocess.run(
                job.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
                pass_fds=(lock_handle.fileno(),) if lock_handle is not None else (),
            )
            seconds = time.monotonic() - start
            log.write(f"=== {_now()} exit status {process.returncode} after {seconds:.1f} s\n")
    finally:
        if lock_handle is not None:
            lock_handle.close()
    if process.returncode == 0:
        return JobResult(job, True, seconds)
    reason, interrupted = exit_reason(process.returncode)
    return JobResult(job, False, seconds, reason, interrupted)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
