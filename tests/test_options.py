"""Declared options: layered resolution, unknown names refused with the closest names, types checked."""

from __future__ import annotations

import pytest

from medvlp_bench.options import OptionError, declared_names, option_defaults, resolve_options
from medvlp_bench.specs import OptionSpec

DECLARED = (
    OptionSpec("temperature", 0.07, "softmax temperature", float),
    OptionSpec("epochs", 10, "epochs", int),
    OptionSpec("gather", False, "gather negatives", bool),
    OptionSpec("quantiles", [0.1, 0.9], "clipping quantiles", list),
    OptionSpec("pooling", "cls", "report pooling", str, choices=("cls", "mean")),
    OptionSpec("width", "auto", "head width", (str, int)),
    OptionSpec("anything", None, "free-form"),
)


def test_layers_apply_in_order_over_the_declared_defaults():
    resolved = resolve_options(DECLARED, {"epochs": 5, "temperature": 1}, ("--option", {"epochs": 7}), owner="x")
    assert resolved == {"temperature": 1.0, "epochs": 7, "gather": False, "quantiles": [0.1, 0.9],
                        "pooling": "cls", "width": "auto", "anything": None}
    assert type(resolved["temperature"]) is float
    assert resolve_options(DECLARED, {"quantiles": (0.2, 0.8), "width": 64, "anything": {"a": 1}},
                           owner="x")["quantiles"] == [0.2, 0.8]
    assert option_defaults(DECLARED)["epochs"] == 10 and declared_names(DECLARED)[0] == "temperature"


def test_an_unknown_name_is_refused_with_the_closest_names_and_its_layer():
    with pytest.raises(OptionError, match=r"^--option temprature: unknown option of method 'm' \(did you mean "
                                          r"temperature\?\); its options: anything, epochs, "):
        resolve_options(DECLARED, {}, ("--option", {"temprature": 0.5}), owner="method 'm'")
    with pytest.raises(OptionError, match=r"^zzz: unknown option of method 'm'; its options: anything"):
        resolve_options(DECLARED, {"zzz": 1}, owner="method 'm'")
    with pytest.raises(OptionError, match="its options: none"):
        resolve_options((), {"a": 1}, owner="method 'random'")


@pytest.mark.parametrize(("values", "message"), [
    ({"temperature": "hot"}, "temperature must be a number, not 'hot'"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"epochs": True}, "epochs must be an integer"),
    ({"gather": 1}, "gather must be true or false"),
    ({"quantiles": 0.1}, "quantiles must be a list"),
    ({"pooling": "max"}, "pooling must be one of 'cls', 'mean', not 'max'"),
    ({"width": 1.5}, "width must be a string or an integer"),
])
def test_a_wrongly_typed_value_is_refused(values, message):
    with pytest.raises(OptionError, match=message):
        resolve_options(DECLARED, values, owner="protocol 'p'")


def test_plain_names_check_names_only_and_none_accepts_anything():
    assert resolve_options(("lr", "epochs"), {"lr": "anything"}, owner="p") == {"lr": "anything"}
    with pytest.raises(OptionError, match=r"did you mean lr\?"):
        resolve_options(("lr", "epochs"), {"lrr": 1}, owner="p")
    assert resolve_options(None, {"whatever": 1}, {"whatever": 2}, owner="p") == {"whatever": 2}
