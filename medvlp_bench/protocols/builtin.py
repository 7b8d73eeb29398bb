"""The core's own protocols, registered through the same hook as plugin protocols.

Implementations are imported when a run needs them, so listing plugins does not import Lightning.
"""

from __future__ import annotations

from medvlp_bench.hookspecs import hookimpl
from medvlp_bench.specs import ProtocolInputs, ProtocolResult, ProtocolSpec

#: the linear probe's options (the keys of ``linear_probe.DEFAULT_HPARAMS``, named here so listing stays light)
LINEAR_PROBE_OPTIONS = ("lr", "weight_decay", "batch_size", "max_epochs", "patience")


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
        )
    ]
