"""The SLURM executor: the sweep's jobs submitted through submitit, as job arrays, with dependencies.

* Pretraining jobs are submitted first, one SLURM job each (``resources.pretraining`` of the suite, overridden by
  the ``--pretrain-*`` flags). A pretraining with ``nodes`` x ``devices`` above 1 is one job of ``nodes`` nodes
  and ``devices`` tasks per node (``--gpus-per-node`` = ``gpus``): submitit starts the task in every SLURM task
  (``srun``), each runs the same ``medvlp-bench pretrain ... --num-nodes N --devices D --strategy ddp``, and
  Lightning's SLURM environment gives the processes their ranks (``SLURM_PROCID``, ``SLURM_LOCALID``). Rank 0
  writes the job's log and its status; rank ``k`` writes ``<log stem>.rank<k>.log``. The cells that
  need a pretraining form one job array per pretraining, submitted with ``--dependency=afterok:<its job>`` (and
  ``--kill-on-invalid-dep=yes``, so they are cancelled when it fails); the other cells form one more array. Array
  tasks get the cell resources (``resources.cells`` of the suite, overridden by the command-line flags:
  partition, account, time, CPUs, GPUs, memory), and ``OMP_NUM_THREADS`` = the CPUs of the task.
* Each task runs its job's command line (the same ``medvlp-bench run`` / ``pretrain --resume`` as the local
  executor) with the output in the job's log file in the sweep folder; submitit's own files go to ``DIR/slurm``.
* Preemption and time limits: the task is a :class:`submitit.helpers.Checkpointable`, so submitit requeues it when
  SLURM signals it; the requeued cell skips if its record appeared meanwhile, and a pretraining resumes from its
  last epoch.
* Waiting: a job is finished when submitit has written its result file (a failure only once the job has left
  the queue: a job killed by ``scontrol requeue`` or a preemption leaves the result of its killed attempt and runs
  again), or when it has left the queue (``squeue``) without one (cancelled, killed for time or memory); the queue
  is read with ``squeue``, not with ``sacct``, which clusters without accounting storage (like the test cluster)
  do not have.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import submitit

from medvlp_bench.errors import MedvlpError
from medvlp_bench.sweeps.jobs import Job, JobResult
from medvlp_bench.sweeps.local_executor import run_logged
from medvlp_bench.sweeps.progress import Progress
from medvlp_bench.sweeps.suite import Resources

#: seconds a job may be out of the queue without a result before it counts as lost (shared file systems lag)
GONE_GRACE_SECONDS = 20.0
POLL_SECONDS = 2.0


class CommandTask(submitit.helpers.Checkpointable):
    """A job's command run inside a SLURM task (in each task of a multi-task job); raises when the command fails,
    so ``afterok`` dependents never run after a failure. Rank 0 logs to the job's log and writes
    ``<log>.status.json`` (return code, seconds) for the sweep to read the reason; rank ``k`` > 0 logs to
    :func:`rank_log` and writes no status (the job's result is rank 0's)."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self) -> float:
        import os

        rank = submitit.JobEnvironment().global_rank
        job = self.job if rank == 0 else replace(self.job, log=rank_log(self.job.log, rank))
        result = run_logged(job, dict(os.environ), None)
        if rank == 0:
            status = {"ok": result.ok, "reason": result.reason, "interrupted": result.interrupted,
                      "seconds": result.seconds}
            _status_path(job).write_text(json.dumps(status))
        if not result.ok:
            raise RuntimeError(f"{job.id} (rank {rank}): {result.reason}; log: {job.log}")
        return result.seconds


def rank_log(log: Path, rank: int) -> Path:
    """The log of rank ``rank`` > 0 of a multi-task job: ``logs/<id>.log`` -> ``logs/<id>.rank<rank>.log``."""
    return log.with_name(f"{log.stem}.rank{rank}{log.suffix}")


def _status_path(job: Job) -> Path:
    return job.log.with_name(job.log.name + ".status.json")


def sbatch_parameters(resources: Resources, *, distributed: bool = False) -> dict:
    """submitit ``SlurmExecutor`` parameters of a job with ``resources`` (``time`` minutes, ``mem`` GB per node,
    ``cpus`` per task): one task on one node, or with ``distributed`` (a pretraining) ``resources.nodes`` nodes of
    ``resources.processes_per_node`` tasks each, one per process of the DDP run."""
    nodes, tasks = (resources.nodes, resources.processes_per_node) if distributed else (1, 1)
    parameters: dict = {"nodes": nodes, "ntasks_per_node": tasks, "cpus_per_task": resources.cpus or 1,
                        "setup": ["export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} "
                                  "MKL_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}"]}
    if resources.time is not None:
        parameters["time"] = resources.time
    if resources.partition is not None:
        parameters["partition"] = resources.partition
    if resources.account is not None:
        parameters["account"] = resources.account
    if resources.gpus:
        parameters["gpus_per_node"] = resources.gpus
    if resources.mem is not None:
        parameters["mem"] = f"{int(resources.mem * 1024)}M"
    return parameters


class SlurmExecutor:
    """Runs jobs on a SLURM cluster through submitit (see the module docstring)."""

    def __init__(self, folder: Path, cells: Resources, pretraining: Resources):
        self.folder = Path(folder)
        self.cells, self.pretraining = cells, pretraining

    @property
    def slots(self) -> int:
        return max(1, _idle_cpus() // max(1, self.cells.cpus or 1))

    def _executor(self, resources: Resources, extra: Optional[dict] = None, *, distributed: bool = False):
        executor = submitit.SlurmExecutor(folder=self.folder / "%j", max_num_timeout=3)
        executor.update_parameters(**sbatch_parameters(resources, distributed=distributed), job_name="medvlp-sweep",
                                   additional_parameters=extra or {})
        return executor

    def run(self, jobs: Sequence[Job], progress: Progress) -> list[JobResult]:
        submitted: dict[str, object] = {}
        for job in jobs:
            if job.kind == "pretrain":
                submitted[job.id] = self._executor(self.pretraining, distributed=True).submit(CommandTask(job))
        groups: dict[Optional[str], list[Job]] = defaultdict(list)
        for job in jobs:
            if job.kind == "cell":
                groups[job.after].append(job)
        for after, members in groups.items():
            extra = ({"dependency": f"afterok:{submitted[after].job_id}", "kill_on_invalid_dep": "yes"}
                     if after is not None else {})
            executor = self._executor(self.cells, extra)
            with executor.batch():
                handles = [executor.submit(CommandTask(job)) for job in members]
            submitted.update({job.id: handle for job, handle in zip(members, handles)})
        return self._wait(jobs, submitted, progress)

    def _wait(self, jobs: Sequence[Job], submitted: dict, progress: Progress) -> list[JobResult]:
        results: dict[str, JobResult] = {}
        gone_since: dict[str, float] = {}
        running: set[str] = set()
        while len(results) < len(jobs):
            queue = _queue_states()
            for job in jobs:
                if job.id in results:
                    continue
                handle = submitted[job.id]
                state = _state_in_queue(str(handle.job_id), queue)
                if state == "RUNNING" and job.id not in running:
                    running.add(job.id)
                    progress.started(job)
                result = None
                if handle.paths.result_pickle.exists():
                    result = self._result(job, handle)
                    if not result.ok and state is not None:  # e.g. killed by a requeue: it runs again
                        result = None
                elif state is None:
                    first = gone_since.setdefault(job.id, time.monotonic())
                    if time.monotonic() - first > GONE_GRACE_SECONDS:
                        result = JobResult(job, False, 0.0, f"left the queue without a result (cancelled, or out of "
                                                            f"time or memory); see {self.folder}/{handle.job_id}*")
                if result is not None:
                    results[job.id] = result
                    progress.finished(result)
                    if not result.ok:
                        self._cancel_dependents(job, jobs, submitted, results, progress)
            if len(results) < len(jobs):
                time.sleep(POLL_SECONDS)
        return [results[job.id] for job in jobs]

    def _result(self, job: Job, handle) -> JobResult:
        status = _status_path(job)
        if status.is_file():
            data = json.loads(status.read_text())
            return JobResult(job, data["ok"], data["seconds"], data["reason"], data["interrupted"])
        try:
            seconds = handle.result()
            return JobResult(job, True, float(seconds))
        except Exception as error:  # submitit's FailedJobError and friends: the task died before its status
            return JobResult(job, False, 0.0, f"SLURM task failed: {str(error).splitlines()[0]}")

    def _cancel_dependents(self, failed: Job, jobs, submitted, results, progress) -> None:
        for job in jobs:
            if job.after == failed.id and job.id not in results:
                submitted[job.id].cancel(check=False)
                results[job.id] = JobResult(job, False, 0.0, f"its pretraining failed ({failed.log})")
                progress.finished(results[job.id])


def _queue_states() -> dict[str, str]:
    """``squeue`` job id -> state for this user's jobs (array tasks as ``ID_TASK``, pending arrays ``ID_[..]``)."""
    try:
        output = subprocess.run(["squeue", "--noheader", "--me", "--format=%i %T"], capture_output=True, text=True,
                                timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise MedvlpError(f"cannot read the SLURM queue (squeue): {error}") from error
    return dict(line.split(None, 1) for line in output.splitlines() if line.strip())


def _state_in_queue(job_id: str, queue: dict[str, str]) -> Optional[str]:
    """The job's state in the queue, ``None`` when it has left it (a pending array counts for its tasks)."""
    if job_id in queue:
        return queue[job_id]
    main = job_id.split("_")[0]
    for queued, state in queue.items():
        if queued.startswith(f"{main}_[") or queued == main:
            return state
    return None


def _idle_cpus() -> int:
    """CPUs of the cluster (for the progress view's ETA: cells that can run at once)."""
    try:
        output = subprocess.run(["sinfo", "--noheader", "--format=%C"], capture_output=True, text=True,
                                timeout=60).stdout
        return max(int(line.split("/")[3]) for line in output.splitlines() if line.count("/") == 3)
    except (OSError, subprocess.SubprocessError, ValueError):
        return 1

