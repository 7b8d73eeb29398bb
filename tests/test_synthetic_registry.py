"""The findings registry: every finding declared once, consistently, and found from its module alone; every
synthetic writer declares findings the registry knows."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from medvlp_bench_plugins import synthetic
from medvlp_bench_plugins.synthetic import findings, registry
from medvlp_bench_plugins.synthetic.finding_spec import Finding
from medvlp_bench_plugins.synthetic.reports import LUNGS_CLEAR, NORMAL_STATEMENTS, _fill

WRITERS = ("chexpert_synthetic", "covidx_synthetic", "mimic_cxr_synthetic", "object_cxr_synthetic",
           "rsna_synthetic", "siim_synthetic")

NEW_FINDING = '''
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.opacity import Opacity

FINDING = FindingSpec(
    name="mass", draw_order=100, report_order=100, prevalence=0.0,
    sample=lambda rng, s: (Finding("right", "mid", s), [Opacity("right", 0.5, 0.5, 0.08, 1.0, 0.3 * s)]),
    positive=(("A mass in the {where}.", "{Where} mass.", {"Lung Lesion": 1}),),
)
'''


def test_findings_come_in_draw_order_with_unique_orders():
    specs = list(synthetic.REGISTRY.values())
    assert [spec.name for spec in specs] == list(synthetic.FINDINGS)
    assert [spec.draw_order for spec in specs] == sorted(spec.draw_order for spec in specs)
    assert len({spec.report_order for spec in specs}) == len(specs)
    assert synthetic.DEFAULT_PREVALENCE == {spec.name: spec.prevalence for spec in specs}


@pytest.mark.parametrize("name", synthetic.FINDINGS)
def test_each_finding_states_known_observations_and_contradicts_known_statements(name):
    spec = synthetic.REGISTRY[name]
    assert set(spec.contradicts) <= set(NORMAL_STATEMENTS) | {LUNGS_CLEAR}
    assert spec.positive
    for sentence, summary, stated in (*spec.positive, *spec.hedged):
        assert set(stated) <= set(synthetic.OBSERVATIONS) and set(stated.values()) <= {1, -1}
        for laterality in ("right", "bilateral"):
            filled = _fill(sentence, Finding(laterality, "lower", 0.5), "lung base", 9)
            assert "{" not in filled and filled[0].isupper()
            # what the sentence states is what an independent reading of it finds
            assert synthetic.label_report(f"FINDINGS: {filled}\nIMPRESSION: {summary or 'None.'}")[
                next(iter(stated))] in (1.0, -1.0)
    finding, lesions = spec.sample(np.random.default_rng(0), 0.6)
    assert finding.severity == 0.6 and all(isinstance(lesion, synthetic.Lesion) for lesion in lesions)


def test_a_finding_present_in_a_study_records_what_its_module_says():
    for name in synthetic.FINDINGS:
        case = synthetic.sample_case(np.random.default_rng(1), size=96, findings=[name])
        assert list(case.findings) == [name]
        assert set(case.records) <= {name}
        assert bool(case.records) == bool(synthetic.REGISTRY[name].records)


def test_a_new_finding_module_joins_the_registry_without_other_edits(tmp_path, monkeypatch):
    (tmp_path / "mass.py").write_text(NEW_FINDING)
    monkeypatch.setattr(findings, "__path__", [*findings.__path__, str(tmp_path)])
    collected = registry._collect()
    assert list(collected)[-1] == "mass" and collected["mass"].draw_order == 100
    finding, lesions = collected["mass"].sample(np.random.default_rng(0), 0.5)
    image = synthetic.render_frontal(synthetic.sample_study(np.random.default_rng(0), findings=[]).anatomy,
                                     lesions, 96).image
    assert image.shape == (96, 96) and finding.laterality == "right"
    sys.modules.pop(f"{findings.__name__}.mass")


def test_two_findings_with_one_draw_order_are_refused(tmp_path, monkeypatch):
    (tmp_path / "clash.py").write_text(NEW_FINDING.replace('"mass"', '"clash"').replace("draw_order=100",
                                                                                        "draw_order=0"))
    monkeypatch.setattr(findings, "__path__", [*findings.__path__, str(tmp_path)])
    with pytest.raises(ValueError, match="draw_order"):
        registry._collect()
    sys.modules.pop(f"{findings.__name__}.clash")


@pytest.mark.parametrize("module", WRITERS)
def test_every_writer_declares_findings_the_registry_knows(module):
    writer = importlib.import_module(f"medvlp_bench_plugins.datasets.{module}")
    assert writer.FINDINGS_DRAWN and set(writer.FINDINGS_DRAWN) <= set(synthetic.FINDINGS)



def test_anatomy_overrides_are_checked_and_applied_before_the_ap_magnification():
    with pytest.raises(ValueError, match="dragon"):
        synthetic.sample_anatomy(np.random.default_rng(0), "PA", "M", {"dragon": 1.0})
    assert synthetic.sample_anatomy(np.random.default_rng(0), "PA", "M", {"ctr": 0.6}).ctr == 0.6
    assert synthetic.sample_anatomy(np.random.default_rng(0), "AP", "M", {"ctr": 0.6}).ctr == pytest.approx(0.636)
