"""The ``medvlp-bench`` command line: plugins, run, pretrain, leaderboard, plot, report, data synth, data check,
sweep.

Exit status: 0 success; 1 a reported error (bad data, missing weights, ...); 2 a usage error (unknown option,
unknown method/task/dataset name: printed with did-you-mean suggestions and the available names).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from medvlp_bench import __version__
from medvlp_bench.errors import MedvlpError, UnknownNameError

EXIT_ERROR, EXIT_USAGE = 1, 2


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it is None or a flag's False."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _formatter(prog):
    return _HelpFormatter(prog, max_help_position=32)


def _dataset_path(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(folder)


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _pct(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"pct must be a fraction in (0, 1] (1% is 0.01), got {text}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data-root", type=Path, default=None,
                       help="folder holding the raw downloads, one sub-folder per dataset (env MEDVLP_DATA_ROOT)")
    group.add_argument("--dataset-path", type=_dataset_path, action="append", default=[], metavar="NAME=DIR",
                       help="folder of one dataset's raw download, overriding the data root (repeatable)")
    group.add_argument("--data", choices=["auto", "synthetic"], default="auto",
                       help="'synthetic' forces the synthetic default even when a data root is configured")
    group.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic default data")
    group.add_argument("--synthetic-scale", type=float, default=1.0,
                       help="size of the synthetic default relative to its standard size")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medvlp-bench", formatter_class=_formatter,
        description="Pretrain, import and evaluate medical vision-language pretraining methods on chest X-rays.",
    )
    parser.add_argument("--version", action="version", version=f"medvlp-bench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugins = commands.add_parser("plugins", help="list encoders, methods, datasets, tasks, protocols",
                                  formatter_class=_formatter)
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    run = commands.add_parser("run", help="evaluate a method on a downstream task", formatter_class=_formatter)
    run.add_argument("--method", required=True, help="method name (see `medvlp-bench plugins`)")
    run.add_argument("--task", required=True, help="task name (see `medvlp-bench plugins`)")
    run.add_argument("--pct", type=_pct, default=1.0, help="fraction of the training split to use (0.01 = 1%%)")
    run.add_argument("--seed", type=int, nargs="+", default=[0], help="run seed(s); one record per seed")
    run.add_argument("--out", type=Path, default=Path("results"), help="folder of run records")
    run.add_argument("--encoder", default=None,
                     help="image encoder architecture (default: the method's for the data source, see "
                          "`medvlp-bench plugins`)")
    run.add_argument("--checkpoint", type=Path, default=None, help="weights file of the method to evaluate")
    run.add_argument("--trust-checkpoint", action="store_true",
                     help="allow loading a checkpoint that needs more than plain tensors (executes pickled code)")
    run.add_argument("--pretrain-epochs", type=int, default=None,
                     help="without --checkpoint: epochs of the method's pretraining (default: its profile's). On "
                          "synthetic data it is found in the model store or trained once; on real data it is only "
                          "looked up there (made by `medvlp-bench pretrain`, e.g. in a sweep)")
    run.add_argument("--pretrain-nodes", type=int, default=1, metavar="N",
                     help="without --checkpoint: use the stored pretraining that ran on this many nodes (its global "
                          "batch, part of its key); a run never trains a multi-process pretraining itself")
    run.add_argument("--pretrain-devices", type=int, default=1, metavar="D",
                     help="likewise: the processes per node of that pretraining")
    run.add_argument("--method-option", action="append", default=[], metavar="KEY=VALUE", type=_option,
                     help="method option (JSON value) for the weights the run pretrains on first use, e.g. "
                          "--method-option temperature=0.1; recorded in the config (repeatable)")
    run.add_argument("--force", action="store_true", help="run even if a record with the same config exists")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", type=_option,
                     help="protocol option (JSON value), e.g. --option max_epochs=20 or --option "
                          "reference_bn_drift=true; recorded in the config (repeatable)")
    _add_data_options(run)

    pre = commands.add_parser("pretrain", help="pretrain a method on an image-report corpus", formatter_class=_formatter)
    pre.add_argument("--method", required=True, help="method name (see `medvlp-bench plugins`)")
    pre.add_argument("--corpus", default=None, help="dataset holding the image-report pairs (default: the method's)")
    pre.add_argument("--image-encoder", default=None,
                     help="image encoder (default: the method's profile for the data source)")
    pre.add_argument("--text-encoder", default=None,
                     help="text encoder (default: the method's profile for the data source; image-only methods "
                          "use none)")
    pre.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the method's profile)")
    pre.add_argument("--batch-size", type=int, default=None, help="batch per device (default: the method's profile)")
    pre.add_argument("--devices", type=int, default=1, help="devices per node (GPUs, or CPU processes)")
    pre.add_argument("--num-nodes", type=int, default=1, help="nodes")
    pre.add_argument("--strategy", default="auto", help="Lightning strategy (e.g. ddp)")
    pre.add_argument("--accelerator", default="auto", help="Lightning accelerator (cpu, gpu, auto)")
    pre.add_argument("--precision", default="32-true", help="Lightning precision (32-true, bf16-mixed, 16-mixed)")
    pre.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes per device")
    pre.add_argument("--seed", type=int, default=42, help="training seed")
    pre.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", type=_option,
                     help="method option (JSON value), e.g. --option gather_negatives=true (repeatable)")
    pre.add_argument("--out", type=Path, default=None, help="output folder (default: the model store)")
    pre.add_argument("--resume", action="store_true", help="continue from the output folder's last checkpoint")
    _add_data_options(pre)

    _add_results_commands(commands)

    data = commands.add_parser("data", help="synthetic data and raw-download checks", formatter_class=_formatter)
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    synth = data_commands.add_parser("synth", help="generate the synthetic default", formatter_class=_formatter)
    synth.add_argument("--datasets", nargs="+", default=None, help="datasets to generate (default: all)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    synth.add_argument("--scale", type=float, default=1.0, help="size relative to the standard size")
    check = data_commands.add_parser("check", help="validate a dataset's raw download", formatter_class=_formatter)
    check.add_argument("dataset", help="dataset name (see `medvlp-bench plugins`)")
    _add_data_options(check)
    _add_sweep_parser(commands)
    return parser


def _add_sweep_parser(commands) -> None:
    sweep = commands.add_parser("sweep", help="run a benchmark suite (a YAML grid) locally or on SLURM",
                                formatter_class=_formatter)
    sweep.add_argument("suite", type=Path, help="suite file, e.g. benchmarks/suites/synthetic-quick.yaml")
    sweep.add_argument("--executor", choices=["local", "slurm"], default="local",
                       help="local process pool, or SLURM job arrays through submitit")
    sweep.add_argument("--workers", type=int, default=1,
                       help="local: parallel cells (CPU; the cores are split between them); with GPUs one per GPU")
    sweep.add_argument("--dry-run", action="store_true", help="print the plan (and the cells to run), run nothing")
    sweep.add_argument("--retry-failed", action="store_true", help="also run the cells that failed in a former sweep")
    sweep.add_argument("--out", type=Path, default=None,
                       help="sweep folder: records/, logs/, leaderboard.md (default: results/<suite name>)")
    slurm = sweep.add_argument_group("SLURM resources of each cell (override the suite's resources.cells)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--account", default=None)
    slurm.add_argument("--time", type=int, default=None, help="minutes")
    slurm.add_argument("--gpus", type=int, default=None, help="GPUs per cell")
    slurm.add_argument("--cpus", type=int, default=None, help="CPUs per cell")
    slurm.add_argument("--mem", type=float, default=None, help="memory per cell in GB")
    pretraining = sweep.add_argument_group(
        "resources of each pretraining (override the suite's resources.pretraining; nodes x devices above 1: "
        "Lightning DDP, under srun on SLURM)")
    pretraining.add_argument("--pretrain-partition", default=None, metavar="P")
    pretraining.add_argument("--pretrain-account", default=None, metavar="A")
    pretraining.add_argument("--pretrain-time", type=int, default=None, metavar="MIN", help="minutes")
    pretraining.add_argument("--pretrain-gpus", type=int, default=None, metavar="G", help="GPUs per node")
    pretraining.add_argument("--pretrain-cpus", type=int, default=None, metavar="C", help="CPUs per process")
    pretraining.add_argument("--pretrain-mem", type=float, default=None, metavar="GB", help="memory per node in GB")
    pretraining.add_argument("--pretrain-nodes", type=int, default=None, metavar="N",
                             help="nodes (SLURM executor only above 1)")
    pretraining.add_argument("--pretrain-devices", type=int, default=None, metavar="D",
                             help="processes per node (default: one per GPU, or 1)")


def command_plugins(args, registry) -> int:
    from medvlp_bench.plugin_listing import listing_rows, render_listing

    if args.json:
        print(json.dumps({"plugins": listing_rows(registry), "problems": registry.problems}, indent=2))
    else:
        print(render_listing(registry))
    return 0


def command_run(args, registry) -> int:
    """Run each seed; a SIGTERM during a fit (a pretraining the run makes, a head it trains) ends the process as
    terminated by it, without a record (:func:`sigterm_ends_the_process`)."""
    with sigterm_ends_the_process("run stopped by SIGTERM before its record was written; run it again (an "
                                  "interrupted pretraining continues from its last epoch)"):
        return _run_seeds(args, registry)


def _run_seeds(args, registry) -> int:
    from medvlp_bench.runner import RunRequest, run

    for seed in args.seed:
        request = RunRequest(
            method=args.method, task=args.task, pct=args.pct, seed=seed, out_dir=args.out,
            data_root=args.data_root, dataset_paths=dict(args.dataset_path), synthetic=args.data == "synthetic",
            synthetic_seed=args.synthetic_seed, synthetic_scale=args.synthetic_scale, encoder=args.encoder,
            checkpoint=args.checkpoint, trust_checkpoint=args.trust_checkpoint, force=args.force,
            hparams=dict(args.option), pretrain_epochs=args.pretrain_epochs,
            method_options=dict(args.method_option), pretrain_nodes=args.pretrain_nodes,
            pretrain_devices=args.pretrain_devices,
        )
        outcome = run(registry, request)
        record = outcome.record
        value = record.metrics[record.primary_metric]
        shown = "undefined" if value is None else f"{100 * value:.1f}%"
        status = "skipped (record exists; --force to rerun)" if outcome.skipped else "done"
        print(
            f"{record.method} on {record.task} pct={record.pct:g} seed={record.seed} [{record.data_source}]: "
            f"{record.primary_metric} = {shown} (n_train={record.n_train}, n_test={record.n_test}) "
            f"{status} -> {outcome.path}"
        )
    return 0


def pretrain_request(args, registry):
    """The :class:`~medvlp_bench.pretraining.service.PretrainRequest` of a parsed ``pretrain`` command line."""
    from medvlp_bench.pretraining.service import PretrainRequest, check_options, synthetic_descriptor
    from medvlp_bench.runner import RunRequest, locate_dataset

    method = registry.get("method", args.method)
    if method.pretrain is None:
        raise MedvlpError(f"method {method.name!r} does not pretrain (it has no pretraining stage)")
    check_options(method, dict(args.option))
    corpus_name = args.corpus or method.corpus
    if corpus_name is None:
        raise MedvlpError(f"method {method.name!r} names no corpus; pass --corpus DATASET")
    corpus = registry.get("dataset", corpus_name)
    location = locate_dataset(corpus, RunRequest(
        method=args.method, task="", pct=1.0, data_root=args.data_root, dataset_paths=dict(args.dataset_path),
        synthetic=args.data == "synthetic", synthetic_seed=args.synthetic_seed, synthetic_scale=args.synthetic_scale,
    ))
    request = PretrainRequest(
        method=args.method, corpus=corpus.name, data_source=location.source, corpus_folder=location.folder,
        synthetic=synthetic_descriptor(args.synthetic_seed, args.synthetic_scale) if location.source == "synthetic"
        else None,
        image_encoder=args.image_encoder, text_encoder=args.text_encoder, max_epochs=args.epochs,
        batch_size=args.batch_size, devices=args.devices, num_nodes=args.num_nodes, strategy=args.strategy,
        accelerator=args.accelerator, precision=args.precision, num_workers=args.num_workers, seed=args.seed,
        resume=args.resume, options=dict(args.option), out_dir=args.out,
    )
    return request


@contextmanager
def sigterm_ends_the_process(message: str):
    """Lightning ends a fit on SIGTERM (``scancel``, a SLURM requeue or time limit, ``kill``) with its
    ``SIGTERMException``, a ``SystemExit`` whose status is 0. Inside this context such a stop prints ``message`` and
    ends the process as terminated by SIGTERM instead, so a sweep counts the job as interrupted (run again) and SLURM
    ``afterok`` dependents do not start."""
    import os
    import signal

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        yield
    except SIGTERMException:
        print(f"medvlp-bench: {message}", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise


def command_pretrain(args, registry) -> int:
    """Pretrain; a SIGTERM ends the process as terminated by it (:func:`sigterm_ends_the_process`): a sweep reruns
    it, resumed from the last epoch."""
    from medvlp_bench.pretraining.ranks import is_first_process
    from medvlp_bench.pretraining.service import pretrain

    with sigterm_ends_the_process("pretraining stopped by SIGTERM; `pretrain ... --resume` continues from its "
                                  "last epoch"):
        checkpoint = pretrain(registry, pretrain_request(args, registry))
    if is_first_process():  # the other processes of a DDP pretraining run this command too
        print(f"pretrained {args.method}: {checkpoint}")
    return 0


def _add_statistics_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("statistics (need the records' per-sample outputs)")
    group.add_argument("--baseline", default=None, metavar="METHOD",
                       help="show every other cell as its difference to this method (or row label), with a paired "
                            "bootstrap interval, p-value and significance mark")
    group.add_argument("--ci", action="store_true", help="add the 95%% bootstrap interval to every plain cell")
    group.add_argument("--correction", choices=["holm", "bh", "none"], default="holm",
                       help="multiple-comparison correction of the p-values across a table")
    group.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    group.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resampling")


def _add_results_commands(commands) -> None:
    """The ``leaderboard``, ``plot`` and ``report`` sub-commands (tables, figures and a page from run records)."""
    board = commands.add_parser("leaderboard", help="tables from run records", formatter_class=_formatter)
    board.add_argument("--runs", type=Path, default=Path("results"),
                       help="folder of run records (searched recursively)")
    board.add_argument("--format", choices=["md", "csv", "latex"], default="md", help="output format")
    board.add_argument("--output", type=Path, default=None, help="write to this file instead of standard output")
    board.add_argument("--reported", action="store_true", help="add the published numbers as reference rows")
    _add_statistics_options(board)
    plot = commands.add_parser("plot", formatter_class=_formatter,
                               help="data-efficiency curves and a delta heat map from run records")
    plot.add_argument("--runs", type=Path, default=Path("results"),
                      help="folder of run records (searched recursively)")
    plot.add_argument("--out", type=Path, default=Path("plots"), help="folder for the PNG and SVG files")
    plot.add_argument("--baseline", default=None, metavar="METHOD",
                      help="method (or row label) the heat map of differences compares against (none: no heat map)")
    plot.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    plot.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resampling")
    report = commands.add_parser("report", formatter_class=_formatter,
                                 help="one markdown page: leaderboard, plots, published rows, record files")
    report.add_argument("--runs", type=Path, default=Path("results"),
                        help="folder of run records (searched recursively)")
    report.add_argument("--out", type=Path, required=True, help="folder for report.md and its figures")
    _add_statistics_options(report)


def _statistics_request(args):
    from medvlp_bench.statistics.table_statistics import StatisticsRequest

    if args.resamples < 1:
        raise MedvlpError(f"--resamples must be at least 1, not {args.resamples}")
    return StatisticsRequest(ci=args.ci, baseline=args.baseline, correction=args.correction,
                             n_resamples=args.resamples, seed=args.bootstrap_seed)


def _record_files(folder: Path):
    from medvlp_bench.records import load_record_files

    if not folder.is_dir():
        raise MedvlpError(f"no run records folder {folder}")
    pairs = load_record_files(folder)
    return [record for _, record in pairs], [path for path, _ in pairs]


def command_leaderboard(args, registry) -> int:
    from medvlp_bench.leaderboard import build_leaderboard
    from medvlp_bench.reported import load_reported

    records, files = _record_files(args.runs)
    statistics = _statistics_request(args) if args.baseline or args.ci else None
    text = build_leaderboard(records, load_reported() if args.reported else None, args.format, files=files,
                             statistics=statistics)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(records)} records)")
    else:
        print(text)
    return 0


def command_data(args, registry) -> int:
    from medvlp_bench.data.synthetic_store import ensure_synthetic
    from medvlp_bench.runner import RunRequest, locate_dataset

    if args.data_command == "synth":
        names = args.datasets or [n for n in registry.names("dataset")
                                  if registry.get("dataset", n).write_synthetic is not None]
        for name in names:
            folder = ensure_synthetic(registry.get("dataset", name), args.seed, args.scale)
            print(f"{name}: {folder}")
        return 0
    dataset = registry.get("dataset", args.dataset)
    request = RunRequest(method="", task="", pct=1.0, data_root=args.data_root,
                         dataset_paths=dict(args.dataset_path), synthetic=args.data == "synthetic",
                         synthetic_seed=args.synthetic_seed, synthetic_scale=args.synthetic_scale)
    location = locate_dataset(dataset, request)
    problems = dataset.check(location.folder)
    if problems:
        print(f"{dataset.name} at {location.folder}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        return EXIT_ERROR
    print(f"{dataset.name} at {location.folder}: OK")
    return 0


def command_plot(args, registry) -> int:
    from medvlp_bench.plots import write_plots

    records, files = _record_files(args.runs)
    for path in write_plots(records, files, args.out, baseline=args.baseline, n_resamples=args.resamples,
                            seed=args.bootstrap_seed):
        print(f"wrote {path}")
    return 0


def command_report(args, registry) -> int:
    from medvlp_bench.report import write_report

    records, files = _record_files(args.runs)
    path = write_report(records, files, args.out, _statistics_request(args), runs_folder=args.runs)
    print(f"wrote {path} ({len(records)} records)")
    return 0


def command_sweep(args, registry) -> int:
    from medvlp_bench.sweeps.sweep import SweepOptions, run_sweep

    if args.workers < 1:
        raise MedvlpError(f"--workers must be at least 1, not {args.workers}")
    resources = {name: getattr(args, name) for name in ("partition", "account", "time", "gpus", "cpus", "mem")}
    pretraining = {name: getattr(args, f"pretrain_{name}")
                   for name in ("partition", "account", "time", "gpus", "cpus", "mem", "nodes", "devices")}
    for name in ("nodes", "devices"):
        if pretraining[name] is not None and pretraining[name] < 1:
            raise MedvlpError(f"--pretrain-{name} must be at least 1, not {pretraining[name]}")
    return run_sweep(registry, SweepOptions(
        suite=args.suite, executor=args.executor, workers=args.workers, dry_run=args.dry_run,
        retry_failed=args.retry_failed, out=args.out, resources=resources, pretraining_resources=pretraining,
    ))


COMMANDS = {
    "plugins": command_plugins,
    "run": command_run,
    "pretrain": command_pretrain,
    "leaderboard": command_leaderboard,
    "plot": command_plot,
    "report": command_report,
    "data": command_data,
    "sweep": command_sweep,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from medvlp_bench.registry import load_registry

    registry = load_registry()
    for problem in registry.problems if args.command != "plugins" else ():
        print(f"medvlp-bench: plugin problem: {problem}", file=sys.stderr)
    try:
        return COMMANDS[args.command](args, registry)
    except UnknownNameError as error:
        print(f"medvlp-bench: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except MedvlpError as error:
        print(f"medvlp-bench: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
