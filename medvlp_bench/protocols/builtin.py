"""The core's own protocols, registered through the same hook as plugin protocols.

Implementations are imported when a run needs them, so listing plugins does not import Lightning.
"""

from __future__ import annotations

from medvlp_bench.hookspecs import hookimpl
from medvlp_bench.specs import OptionSpec, ProtocolInputs, ProtocolResult, ProtocolSpec

#: the linear probe's options, with the reference protocol's defaults (MGCA paper and code release)
LINEAR_PROBE_OPTIONS = (
    OptionSpec("lr", 5e-4, "AdamW learning rate of the linear head", float),
    OptionSpec("weight_decay", 1e-6, "AdamW weight decay", float),
    OptionSpec("batch_size", 48, "training batch size (cached features)", int),
    OptionSpec("max_epochs", 50, "most training epochs", int),
    OptionSpec("patience", 10, "epochs without a lower validation loss before training stops", int),
)

#: the target kinds the linear probe takes and the metric names it returns (multilabel adds ``auroc_<label>``)
LINEAR_PROBE_TARGETS = ("binary", "multilabel", "multiclass")
LINEAR_PROBE_METRICS = ("auroc", "accuracy", "accuracy_macro")


def _run_linear_probe(inputs: ProtocolInputs) -> ProtocolResult:
    from medvlp_bench.protocols.linear_probe import run_linear_probe

    return run_linear_probe(inputs)


@hookimpl
def medvlp_bench_protocols():
    return [
        ProtocolSpec(
            name="linear_probe",
            description="Frozen encoder, linear head on cached global features (AdamW, early stopping on val loss)",
            run=_run_linear_probe,
            options=LINEAR_PROBE_OPTIONS,
            version="2",
            targets=LINEAR_PROBE_TARGETS,
            metrics=LINEAR_PROBE_METRICS,
        )
    ]
