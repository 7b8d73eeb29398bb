"""A protocol's settings for one run, resolved from its declared options.

Each protocol declares its options as :class:`~medvlp_bench.specs.OptionSpec` s with the reference protocol's
defaults. The values of a run are, later layers winning: the declared defaults, the task's overrides
(``TaskSpec.hparams``), then ``ProtocolInputs.hparams``. The runner already passes the fully resolved values
(defaults, task, ``--option``; unknown names and wrong types refused before any work); a caller that passes only
overrides gets the same values, since the defaults and the task's overrides are filled in here, so a protocol
behaves identically either way. Values outside an option's declared ``choices`` raise a
:class:`~medvlp_bench.errors.MedvlpError` naming the protocol, the option and the choices.
"""

from __future__ import annotations

from typing import Any, Sequence

from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import OptionSpec, ProtocolInputs


def option_defaults(options: Sequence[OptionSpec]) -> dict[str, Any]:
    """name -> declared default, in declaration order."""
    return {option.name: option.default for option in options}


def resolved_hparams(options: Sequence[OptionSpec], inputs: ProtocolInputs, *, protocol: str) -> dict[str, Any]:
    """Declared defaults < ``inputs.task.hparams`` < ``inputs.hparams``, with the declared choices checked."""
    values = {**option_defaults(options), **dict(inputs.task.hparams), **dict(inputs.hparams)}
    for option in options:
        if option.choices is not None and values[option.name] not in option.choices:
            raise MedvlpError(f"{protocol}: --option {option.name}={values[option.name]!r} is not one of "
                              f"{', '.join(map(str, option.choices))}")
    return values
