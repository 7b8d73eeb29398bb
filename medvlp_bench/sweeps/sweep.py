"""``medvlp-bench sweep``: plan a suite, print the plan, run what is missing, summarise, write the leaderboard and
report.

The sweep folder ``DIR`` (``--out``, default ``results/<suite name>``) holds ``records/`` (one run record per
cell), ``logs/<job id>.log`` (each job's output), ``locks/``, ``failed.json`` (see :mod:`.summary`),
``slurm/`` (submitit's files, SLURM executor), ``leaderboard.md`` and ``report/`` (``report.md`` and its figures). Everything is found again from the records,
so the same command after an interruption runs only the cells without a record.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, TextIO

from medvlp_bench.data.build_once import atomic_write_text
from medvlp_bench.errors import MedvlpError
from medvlp_bench.registry import Registry
from medvlp_bench.sweeps.commands import pretrain_command, run_command
from medvlp_bench.sweeps.jobs import Job, JobResult
from medvlp_bench.sweeps.planning import SweepPlan, plan_suite, records_folder
from medvlp_bench.sweeps.progress import Progress
from medvlp_bench.sweeps.suite import Resources, load_suite
from medvlp_bench.sweeps.summary import print_summary, read_failed, update_failed


@dataclass
class SweepOptions:
    """The command line of ``medvlp-bench sweep`` (see its ``--help``)."""

    suite: Path
    executor: str = "local"
    workers: int = 1
    dry_run: bool = False
    retry_failed: bool = False
    out: Optional[Path] = None
    resources: dict = field(default_factory=dict)  # overrides of the suite's cell resources (SLURM)
    pretraining_resources: dict = field(default_factory=dict)  # overrides of the suite's pretraining resources


def sweep_folder(options: SweepOptions, suite_name: str) -> Path:
    return Path(options.out) if options.out is not None else Path("results") / suite_name


def build_jobs(plan: SweepPlan, skip: set[str]) -> list[Job]:
    """Pretraining jobs first, then the cells to run (each after its pretraining, when it needs one)."""
    logs = plan.out_dir / "logs"
    jobs = [Job(job.id, "pretrain", tuple(pretrain_command(job.plan)), logs / f"{job.id}.log",
                processes=job.plan.request.devices) for job in plan.pretrain_jobs]
    for item in plan.to_run:
        if item.cell.id in skip:
            continue
        jobs.append(Job(item.cell.id, "cell", tuple(run_command(item.request)), logs / f"{item.cell.id}.log",
                        after=item.pretrain.id if item.pretrain is not None else None))
    return jobs


def describe_plan(plan: SweepPlan, skip: dict[str, dict], stream: TextIO, *, verbose: bool = False) -> None:
    suite = plan.suite
    to_run = [item for item in plan.to_run if item.cell.id not in skip]
    print(f"suite {suite.name} ({suite.path}): {len(plan.cells)} cells -> {plan.out_dir}", file=stream)
    print(f"  done: {len(plan.done)}   to run: {len(to_run)}   failed before, not retried: {len(skip)}   "
          f"pretraining needed: {len(plan.pretrain_jobs)}", file=stream)
    for job in plan.pretrain_jobs:
        request = job.plan.request
        world = (f" on {request.num_nodes} node(s) x {request.devices} process(es) (DDP)"
                 if request.world_size > 1 else "")
        print(f"  pretraining {job.id}{world} (into {job.out_dir}) for {len(job.cells)} cell(s)", file=stream)
    if verbose:
        for item in to_run:
            print(f"  to run: {item.cell.id}", file=stream)


def run_sweep(registry: Registry, options: SweepOptions, stream: Optional[TextIO] = None,
              progress_stream: Optional[TextIO] = None) -> int:
    """Plan and run a suite (module docstring); returns the exit status: 1 if a cell failed (in this sweep, or in a
    former one and not retried), else 0. The plan and summary go to ``stream`` (default: standard output)."""
    stream = stream if stream is not None else sys.stdout
    suite = load_suite(options.suite)
    out_dir = sweep_folder(options, suite.name)
    pretraining = pretraining_resources(options, suite)
    plan = plan_suite(registry, suite, out_dir, pretraining)
    if plan.pretrain_jobs and pretraining.nodes > 1 and options.executor != "slurm":
        raise MedvlpError(f"{suite.path}: the pretraining asks for {pretraining.nodes} nodes, which needs "
                          f"--executor slurm (the local executor runs on this machine only)")
    previously_failed = read_failed(out_dir)
    missing = {item.cell.id for item in plan.to_run}
    skip = {} if options.retry_failed else {k: v for k, v in previously_failed.items() if k in missing}
    describe_plan(plan, skip, stream, verbose=options.dry_run)
    if options.dry_run:
        return 0
    jobs = build_jobs(plan, set(skip))
    needed = {job.after for job in jobs if job.after is not None}  # a pretraining whose cells are all skipped is not
    jobs = [job for job in jobs if job.kind == "cell" or job.id in needed]
    executor = _executor(options, suite, out_dir, pretraining)
    cells = sum(job.kind == "cell" for job in jobs)
    results: list[JobResult] = []
    if jobs:
        with Progress(cells, len(jobs) - cells, executor.slots, stream=progress_stream) as progress:
            results = executor.run(jobs, progress)
    update_failed(out_dir, results)
    try:
        written, problem = write_results(plan, out_dir, stream), None
    except MedvlpError as error:  # e.g. a foreign or malformed record: the summary still says what ran
        written, problem = [], error
    print_summary(results, len(plan.done), skip, stream, written)
    if problem is not None:
        print(f"leaderboard and report not written: {problem}", file=stream)
    return 1 if skip or problem is not None or any(not result.ok for result in results) else 0


def pretraining_resources(options: SweepOptions, suite) -> Resources:
    """The suite's ``resources.pretraining`` with the ``--pretrain-*`` flags over it, checked: with GPUs there is
    one process per GPU."""
    resources = _merge(suite.resources.get("pretraining", Resources()), options.pretraining_resources)
    if resources.gpus and resources.processes_per_node != resources.gpus:
        raise MedvlpError(f"{suite.path}: with GPUs a pretraining runs one process per GPU; devices "
                          f"({resources.devices}) must equal gpus ({resources.gpus})")
    return resources


def _executor(options: SweepOptions, suite, out_dir: Path, pretraining: Resources):
    if options.executor == "slurm":
        from medvlp_bench.sweeps.slurm_executor import SlurmExecutor

        cells = _merge(suite.resources.get("cells", Resources()), options.resources)
        return SlurmExecutor(out_dir / "slurm", cells, pretraining)
    from medvlp_bench.sweeps.local_executor import LocalExecutor

    return LocalExecutor(options.workers, locks=out_dir / "locks")


def _merge(resources: Resources, overrides: dict) -> Resources:
    return replace(resources, **{name: value for name, value in overrides.items() if value is not None})


def write_results(plan: SweepPlan, out_dir: Path, stream: Optional[TextIO] = None) -> list[Path]:
    """``DIR/leaderboard.md`` and the report ``DIR/report/report.md`` (with its figures, as ``medvlp-bench report``
    writes it) from the records of this suite's cells; returns the files written (none while no cell has a record).

    With the suite's ``baseline``, every other cell shows its difference to the baseline row's cell in the same
    column, with the paired bootstrap interval and the corrected p-value, exactly as ``medvlp-bench leaderboard
    --baseline ROW`` (default statistics settings); while the baseline row has no record yet the results are written
    without differences and a line on ``stream`` says why. Published rows are shown as the suite names them."""
    from medvlp_bench.records import load_record_files
    from medvlp_bench.report import write_report
    from medvlp_bench.statistics.table_statistics import StatisticsRequest

    folder = records_folder(out_dir)
    if not folder.is_dir():
        return []
    keys = {item.plan.key for item in plan.cells}
    pairs = [(path, record) for path, record in load_record_files(folder) if record.config_key in keys]
    if not pairs:
        return []
    files, records = [path for path, _ in pairs], [record for _, record in pairs]
    statistics = StatisticsRequest()
    if plan.suite.baseline is not None:
        row, problem = baseline_row(plan, records, files)
        if row is not None:
            statistics = StatisticsRequest(baseline=row)
        elif stream is not None:
            print(f"results without differences to the baseline: {problem}", file=stream)
    leaderboard = write_leaderboard(plan, Path(out_dir), records, files, statistics)
    report = write_report(records, files, Path(out_dir) / "report", statistics, runs_folder=folder)
    return [leaderboard, report]


def write_leaderboard(plan: SweepPlan, out_dir: Path, records: list, files: list, statistics) -> Path:
    """``DIR/leaderboard.md`` of ``records`` with ``statistics`` (a baseline, or none)."""
    from medvlp_bench.leaderboard import build_leaderboard

    reported = None
    if plan.suite.published:
        from medvlp_bench.reported import load_reported

        reported = load_reported()
        reported = reported[reported["method"].isin(plan.suite.published)]
    path = out_dir / "leaderboard.md"
    atomic_write_text(path, build_leaderboard(records, reported, "md", files=files,
                                              statistics=statistics if statistics.baseline else None))
    return path


def baseline_row(plan: SweepPlan, records: list, files: list) -> tuple[Optional[str], str]:
    """``(row, "")``: the leaderboard's row label of the suite's baseline (the label its records get, e.g.
    ``mgca (weights.pretrain.max_epochs=12)`` for a suite row ``mgca-12ep``), or ``(None, why)`` when its records
    have no single row."""
    from medvlp_bench.leaderboard import runs_frame

    label = plan.suite.baseline
    keys = {item.plan.key for item in plan.cells if item.cell.entry.label == label}
    runs = runs_frame(records, files)
    rows = sorted(set(runs.loc[runs["config_key"].isin(keys), "row"]))
    if not rows:
        return None, f"the baseline {label!r} has no record yet"
    if len(rows) > 1:
        return None, f"the baseline {label!r} has records in several rows ({', '.join(rows)})"
    return rows[0], ""
