"""The synthetic chest X-ray phantom, its findings registry, its template reports, and helpers for writing
synthetic raw datasets (plugin side: the harness core knows none of it). The usual entry points::

    from medvlp_bench_plugins import synthetic

    study = synthetic.sample_study(rng, prevalence)          # a patient, findings, lesions
    case = synthetic.render_study(study, size=256)          # frontal image + case.records by finding name
    lateral = synthetic.render_study(study, lateral=True)   # the same chest from the side
    report = synthetic.write_report(study.findings, rng, view=study.view)   # text + observation labels

See :mod:`.phantom` (rendering, coordinates, the lesion interface), :mod:`.registry` and :mod:`.findings` (one
module per finding: how it is sampled, drawn and recorded, and the report sentences that describe it),
:mod:`.cases` (sampling studies), :mod:`.reports` (reports and labels), :mod:`.observations` (the label
vocabulary) and :mod:`.output` (image counts, ids, progress, image files). ``docs/synthetic.md`` describes it all.
"""

from medvlp_bench_plugins.synthetic.cases import Case, Study, render_study, sample_anatomy, sample_case, sample_study
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import OBSERVATIONS
from medvlp_bench_plugins.synthetic.output import dicom_uid, hex_groups, progress, save_image, scaled, uuid_like
from medvlp_bench_plugins.synthetic.phantom import Anatomy, Lesion, Rendering, render_frontal, render_lateral
from medvlp_bench_plugins.synthetic.registry import DEFAULT_PREVALENCE, FINDINGS, REGISTRY
from medvlp_bench_plugins.synthetic.reports import Report, label_report, write_report

__all__ = [
    "DEFAULT_PREVALENCE",
    "FINDINGS",
    "OBSERVATIONS",
    "REGISTRY",
    "Anatomy",
    "Case",
    "Finding",
    "FindingSpec",
    "Lesion",
    "Rendering",
    "Report",
    "Study",
    "dicom_uid",
    "hex_groups",
    "label_report",
    "progress",
    "render_frontal",
    "render_lateral",
    "render_study",
    "sample_anatomy",
    "sample_case",
    "sample_study",
    "save_image",
    "scaled",
    "uuid_like",
    "write_report",
]
