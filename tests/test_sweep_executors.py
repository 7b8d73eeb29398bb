"""The local executor (slots, dependencies, contained failures, job locks), the progress view and the failed-cells
file, with stand-in jobs (short Python commands) instead of real runs."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from medvlp_bench.sweeps.jobs import Job, JobResult
from medvlp_bench.sweeps.local_executor import LocalExecutor, run_logged, slot_environments
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
