"""Sampling of synthetic patients, their findings and radiographs (the phantom's random side).

A :class:`Study` is one patient examination: demographics, the frontal view type, the normal anatomy, the
findings (name -> :class:`~.finding_spec.Finding`, what a report states) and the lesions drawn for them (what the
renderer draws). :func:`render_study` turns a study into a :class:`Case` (one image and its pixel records);
frontal and lateral images of one study show the same chest. Everything is deterministic given the numpy
``Generator``. The findings and how each is drawn and recorded: :mod:`.registry` and the modules of
:mod:`.findings`. Severity s is uniform in [0.15, 1]; amplitudes grow linearly with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from medvlp_bench_plugins.synthetic.finding_spec import Finding
from medvlp_bench_plugins.synthetic.phantom import Anatomy, Lesion, render_frontal, render_lateral
from medvlp_bench_plugins.synthetic.registry import DEFAULT_PREVALENCE, FINDINGS, REGISTRY
from medvlp_bench_plugins.synthetic.sampling import uniform

#: anatomy parameters a finding may set (``FindingSpec.anatomy``): ``ctr``, the cardiothoracic ratio before
#: the AP magnification
ANATOMY_OVERRIDES = ("ctr",)


@dataclass(frozen=True)
class Study:
    """One examination of one patient: what every image of it shows."""

    sex: str
    age: int
    view: str
    anatomy: Anatomy
    findings: Mapping[str, Finding]
    lesions: tuple[Lesion, ...]


@dataclass
class Case:
    """One rendered radiograph and its ground truth.

    ``view`` is "PA" | "AP" (frontal) or "LATERAL"; ``records`` maps a finding name to what the frontal rendering
    recorded for it (pixel records, stated in each finding's module: lung-opacity boxes, a pneumothorax mask,
    foreign-object outlines); a finding that recorded nothing has no entry, and lateral views record nothing.
    """

    image: np.ndarray
    view: str
    sex: str
    age: int
    findings: Mapping[str, Finding]
    records: Mapping[str, Any]
    study: Study

    @property
    def frontal(self) -> bool:
        return self.view in ("PA", "AP")


def sample_anatomy(rng: np.random.Generator, view: str, sex: str,
                   overrides: Optional[Mapping[str, float]] = None) -> Anatomy:
    """Normal anatomy and exposure. The cardiothoracic ratio is ``U(0.38, 0.52)`` unless ``overrides`` sets
    ``ctr`` (then that draw is skipped); AP views multiply it by 1.06 and have lower lung volumes (bases 3 %
    higher) and clavicles projected over the apices."""
    overrides = overrides or {}
    unknown = set(overrides) - set(ANATOMY_OVERRIDES)
    if unknown:
        raise ValueError(f"unknown anatomy overrides {sorted(unknown)}; known: {ANATOMY_OVERRIDES}")
    apex = uniform(rng, 0.1, 0.15)
    base = uniform(rng, 0.74, 0.82) - (0.03 if view == "AP" else 0.0)
    mediastinum = uniform(rng, 0.06, 0.08)
    lung_width = uniform(rng, 0.25, 0.3)
    right_dome = base - uniform(rng, 0.06, 0.1)
    left_dome = right_dome + uniform(rng, 0.01, 0.03)
    ctr = overrides["ctr"] if "ctr" in overrides else uniform(rng, 0.38, 0.52)
    ctr *= 1.06 if view == "AP" else 1.0
    heart_half_height = 0.75 * 0.5 * ctr * 2 * (mediastinum + lung_width)
    return Anatomy(
        view=view,
        center_x=0.5 + float(rng.normal(0.0, 0.012)),
        apex_y=apex,
        base_y=base,
        lung_width=lung_width,
        mediastinum=mediastinum,
        dome_top=(right_dome, left_dome),
        ctr=ctr,
        heart_y=left_dome - 0.55 * heart_half_height,
        clavicle_y=apex + (uniform(rng, -0.03, 0.0) if view == "AP" else uniform(rng, 0.02, 0.06)),
        rib_spacing=uniform(rng, 0.05, 0.062),
        rib_phase=uniform(rng, 0.0, 1.0),
        breast=uniform(rng, 0.03, 0.08) if sex == "F" else 0.0,
        brightness=uniform(rng, -0.06, 0.06),
        contrast=uniform(rng, 1.15, 1.5),
        gamma=uniform(rng, 0.8, 1.25),
        heel=uniform(rng, -0.12, 0.12),
        noise=uniform(rng, 0.01, 0.035),
        texture_seed=int(rng.integers(2**62)),
    )


def lesions_for(rng: np.random.Generator, names: Iterable[str]) -> tuple[dict[str, Finding], list[Lesion]]:
    """Findings and lesions for the named findings, in draw order: for each, a severity U(0.15, 1), then its
    ``sample``."""
    names = set(names)
    findings: dict[str, Finding] = {}
    lesions: list[Lesion] = []
    for name in FINDINGS:
        if name not in names:
            continue
        finding, drawn = REGISTRY[name].sample(rng, uniform(rng, 0.15, 1.0))
        findings[name] = finding
        lesions.extend(drawn)
    return findings, lesions


def sample_study(rng: np.random.Generator, prevalence: Optional[Mapping[str, float]] = None, *,
                 findings: Optional[Iterable[str]] = None, view: Optional[str] = None, sex: Optional[str] = None,
                 age: Optional[int] = None) -> Study:
    """Sample a patient and study. With ``findings`` exactly those are present; otherwise each finding is
    present independently with probability ``prevalence[name]`` (default :data:`DEFAULT_PREVALENCE`; missing
    names 0). Unless given, ``view`` is AP with probability 0.35, else PA; ``sex`` "M" / "F" 50/50; ``age``
    uniform in 18..90 (the draws are made either way, so fixing one does not shift the others)."""
    unknown = set(findings or ()) | set(prevalence or {})
    if unknown - set(FINDINGS):
        raise ValueError(f"unknown findings {sorted(unknown - set(FINDINGS))}; known: {FINDINGS}")
    drawn_sex, drawn_age, drawn_view = rng.random() < 0.5, int(rng.integers(18, 91)), rng.random() < 0.35
    sex = sex or ("M" if drawn_sex else "F")
    age = drawn_age if age is None else age
    view = view or ("AP" if drawn_view else "PA")
    if findings is None:
        rates = DEFAULT_PREVALENCE if prevalence is None else prevalence
        draws = rng.random(len(FINDINGS))
        findings = [name for name, draw in zip(FINDINGS, draws) if draw < rates.get(name, 0.0)]
    sampled, lesions = lesions_for(rng, findings)
    overrides: dict[str, float] = {}
    for name, finding in sampled.items():
        if REGISTRY[name].anatomy is not None:
            overrides.update(REGISTRY[name].anatomy(finding.severity))
    anatomy = sample_anatomy(rng, view, sex, overrides)
    return Study(sex=sex, age=age, view=view, anatomy=anatomy, findings=sampled, lesions=tuple(lesions))


def render_study(study: Study, *, lateral: bool = False, size: int = 256) -> Case:
    """Render the frontal (default) or lateral image of ``study`` as a :class:`Case`."""
    if lateral:
        rendering = render_lateral(study.anatomy, study.lesions, size)
        return Case(rendering.image, "LATERAL", study.sex, study.age, study.findings, {}, study)
    rendering = render_frontal(study.anatomy, study.lesions, size)
    return Case(rendering.image, study.view, study.sex, study.age, study.findings, rendering.records, study)


def sample_case(rng: np.random.Generator, size: int = 256, prevalence: Optional[Mapping[str, float]] = None, *,
                findings: Optional[Iterable[str]] = None, view: Optional[str] = None) -> Case:
    """Sample a study (see :func:`sample_study`) and render its frontal view."""
    return render_study(sample_study(rng, prevalence, findings=findings, view=view), size=size)
