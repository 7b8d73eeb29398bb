"""The local executor (slots, dependencies, contained failures, job locks, multi-process jobs), the SLURM job
parameters, the progress view and the failed-cells file, with stand-in jobs (short Python commands) instead of
real runs."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from medvlp_bench.errors import MedvlpError
from medvlp_bench.sweeps.jobs import Job, JobResult
from medvlp_bench.sweeps.local_executor import LocalExecutor, job_environment, run_logged, slot_environments
from medvlp_bench.sweeps.slurm_executor import rank_log, sbatch_parameters
from medvlp_bench.sweeps.suite import Resources
from medvlp_bench.sweeps.progress import Progress
from medvlp_bench.sweeps.summary import read_failed, update_failed


def _job(tmp_path, name, code, kind="cell", after=None) -> Job:
    return Job(name, kind, (sys.executable, "-c", code), tmp_path / "logs" / f"{name}.log", after)


def test_cores_are_split_between_cpu_workers_and_gpus_get_one_worker_each():
    assert slot_environments(4, [], cores=8) == [{"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}] * 4
    assert slot_environments(3, [], cores=2) == [{"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}] * 3
    gpus = slot_environments(8, ["2", "5"], cores=16)
    assert [slot["CUDA_VISIBLE_DEVICES"] for slot in gpus] == ["2", "5"]
    assert {slot["OMP_NUM_THREADS"] for slot in gpus} == {"8"}


def test_a_multi_process_job_gets_the_gpus_and_cores_of_as_many_slots():
    cpu = slot_environments(4, [], cores=8)
    assert job_environment(cpu[:2], 2) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert job_environment(cpu[:1], 3) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # at least 1 each
    gpus = slot_environments(8, ["2", "5", "7"], cores=12)
    assert job_environment(gpus[:2], 2) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4",
                                            "CUDA_VISIBLE_DEVICES": "2,5"}
    assert job_environment(gpus[2:], 1) == gpus[2]


def test_the_local_executor_runs_a_ddp_job_on_several_gpu_slots_and_refuses_more_processes_than_gpus(tmp_path):
    show = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"
    jobs = [replace(_job(tmp_path, "pre", show, kind="pretrain"), processes=2),
            _job(tmp_path, "cell", show, after="pre")]
    with Progress(1, 1, 3, stream=io.StringIO()) as progress:
        results = LocalExecutor(1, gpus=["0", "1", "2"]).run(jobs, progress)
    assert all(result.ok for result in results)
    shown = (tmp_path / "logs" / "pre.log").read_text().splitlines()[1]
    assert len(set(shown.split(","))) == 2 and set(shown.split(",")) <= {"0", "1", "2"}
    assert (tmp_path / "logs" / "cell.log").read_text().splitlines()[1] in {"0", "1", "2"}
    with pytest.raises(MedvlpError, match="pre starts 4 processes, one per GPU, but this machine shows 3 GPU"):
        LocalExecutor(1, gpus=["0", "1", "2"]).run([replace(jobs[0], processes=4)], progress)


def test_sbatch_parameters_of_cells_and_of_a_distributed_pretraining():
    cell = sbatch_parameters(Resources(cpus=4, gpus=1, mem=8, time=30, partition="gpu"))
    assert (cell["nodes"], cell["ntasks_per_node"], cell["cpus_per_task"], cell["gpus_per_node"]) == (1, 1, 4, 1)
    assert cell["mem"] == "8192M" and cell["time"] == 30 and cell["partition"] == "gpu"
    pretraining = Resources(nodes=4, gpus=8, cpus=6, account="lab")
    ddp = sbatch_parameters(pretraining, distributed=True)
    assert (ddp["nodes"], ddp["ntasks_per_node"], ddp["gpus_per_node"], ddp["cpus_per_task"]) == (4, 8, 8, 6)
    assert ddp["account"] == "lab"
    cpu = sbatch_parameters(Resources(nodes=2, devices=3), distributed=True)
    assert (cpu["nodes"], cpu["ntasks_per_node"], cpu["cpus_per_task"]) == (2, 3, 1) and "gpus_per_node" not in cpu
    assert sbatch_parameters(Resources(gpus=8))["ntasks_per_node"] == 1  # a cell is one task, whatever its GPUs


def test_other_ranks_log_beside_the_job_log(tmp_path):
    logs = tmp_path / "logs"
    assert rank_log(logs / "pretrain__mgca__abc.log", 3) == logs / "pretrain__mgca__abc.rank3.log"


def test_failures_stay_in_their_job_and_dependents_of_a_failed_pretraining_do_not_start(tmp_path):
    jobs = [
        _job(tmp_path, "pre-bad", "import sys; sys.exit(3)", kind="pretrain"),
        _job(tmp_path, "pre-good", "print('trained')", kind="pretrain"),
        _job(tmp_path, "needs-bad", "open('ran-bad', 'w')", after="pre-bad"),
        _job(tmp_path, "needs-good", "import os; print(os.environ['OMP_NUM_THREADS'])", after="pre-good"),
        _job(tmp_path, "crashes", "raise SystemExit('boom')"),
        _job(tmp_path, "killed", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),
        _job(tmp_path, "fine", "print('ok')"),
    ]
    stream = io.StringIO()
    with Progress(5, 2, 2, stream=stream) as progress:
        results = LocalExecutor(2, gpus=[], locks=tmp_path / "locks").run(jobs, progress)
    outcome = {result.job.id: (result.ok, result.reason, result.interrupted) for result in results}
    assert outcome["pre-bad"] == (False, "exit status 3", False)
    assert outcome["needs-bad"][0] is False and "its pretraining failed" in outcome["needs-bad"][1]
    assert not (tmp_path / "ran-bad").exists() and not (tmp_path / "logs" / "needs-bad.log").exists()
    assert outcome["needs-good"][0] and outcome["fine"][0] and outcome["pre-good"][0]
    assert outcome["crashes"] == (False, "exit status 1", False)
    assert outcome["killed"] == (False, "killed by signal 9", True)
    log = (tmp_path / "logs" / "needs-good.log").read_text()
    assert "-c import os" in log and log.splitlines()[1] == "1" and "exit status 0" in log
    assert "boom" in (tmp_path / "logs" / "crashes.log").read_text()
    assert "cells 5/5 finished (2 done, 3 failed), 0 running, pretraining 2/2" in stream.getvalue()


def test_a_job_whose_lock_is_held_waits_for_the_holder(tmp_path):
    locks = tmp_path / "locks"
    locks.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; h = open(sys.argv[1], 'a'); fcntl.flock(h, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(1.5)"), str(locks / "cell.lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    result = run_logged(_job(tmp_path, "cell", "print('ran')"), {}, locks)
    waited = time.monotonic() - start
    holder.wait()
    assert result.ok and waited > 0.5
    log = (tmp_path / "logs" / "cell.log").read_text()
    assert log.index("another process runs this job; waiting") < log.index("ran")


def test_eta_is_mean_cell_time_times_cells_left_over_slots():
    progress = Progress(10, 0, 2, stream=io.StringIO())
    assert progress.eta_seconds() is None and "ETA -" in progress.line()
    for seconds in (10.0, 20.0):
        progress.finished(JobResult(Job(f"c{seconds}", "cell", (), None), True, seconds))
    assert progress.eta_seconds() == 15.0 * 8 / 2
    assert "cells 2/10 finished (2 done, 0 failed)" in progress.line() and "ETA 1m00s" in progress.line()


def test_failed_file_keeps_errors_and_forgets_successes_and_interruptions(tmp_path):
    def result(name, ok, interrupted=False):
        return JobResult(Job(name, "cell", (), tmp_path / f"{name}.log"), ok, 1.0, "" if ok else "why", interrupted)

    update_failed(tmp_path, [result("a", False), result("b", False), result("c", False, interrupted=True)])
    assert set(read_failed(tmp_path)) == {"a", "b"}
    update_failed(tmp_path, [result("a", True)])
    assert read_failed(tmp_path) == {"b": {"reason": "why", "log": str(tmp_path / "b.log")}}
