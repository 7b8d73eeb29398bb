"""The synthetic chest X-ray phantom, its template reports, and helpers for writing synthetic raw datasets.

Plugins reach it as ``from medvlp_bench.api import synthetic``. The usual entry points::

    study = synthetic.sample_study(rng, prevalence)          # a patient, findings, lesions
    case = synthetic.render_study(study, size=256)          # frontal image + boxes / mask / objects
    lateral = synthetic.render_study(study, lateral=True)   # the same chest from the side
    report = synthetic.write_report(study.findings, rng, view=study.view)   # text + CheXpert labels

See :mod:`.phantom` (rendering, coordinates), :mod:`.cases` (sampling, findings), :mod:`.reports` (reports and
labels) and :mod:`.output` (ids, progress, the completion marker).
"""

from medvlp_bench.synthetic.cases import (
    DEFAULT_PREVALENCE,
    FINDINGS,
    Case,
    Finding,
    Study,
    render_study,
    sample_anatomy,
    sample_case,
    sample_study,
)
from medvlp_bench.synthetic.output import (
    GENERATOR,
    MARKER,
    begin,
    dicom_uid,
    finish,
    hex_groups,
    progress,
    read_marker,
    save_image,
    scaled,
    uuid_like,
)
from medvlp_bench.synthetic.phantom import (
    ELLIPSE,
    POLYGON,
    RECTANGLE,
    Anatomy,
    Rendering,
    render_frontal,
    render_lateral,
)
from medvlp_bench.synthetic.reports import CHEXPERT_LABELS, Report, label_report, write_report

__all__ = [
    "CHEXPERT_LABELS",
    "DEFAULT_PREVALENCE",
    "ELLIPSE",
    "FINDINGS",
    "GENERATOR",
    "MARKER",
    "POLYGON",
    "RECTANGLE",
    "Anatomy",
    "Case",
    "Finding",
    "Rendering",
    "Report",
    "Study",
    "begin",
    "dicom_uid",
    "finish",
    "hex_groups",
    "label_report",
    "progress",
    "read_marker",
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
