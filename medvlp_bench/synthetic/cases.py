"""Sampling of synthetic patients, their findings and radiographs (the phantom's random side).

A :class:`Study` is one patient examination: demographics, the frontal view type, the normal anatomy, the
findings (name -> :class:`Finding`, what a report states) and the lesions drawn for them (what the
renderer draws). :func:`render_study` turns a study into a :class:`Case` (one image and its pixel records);
frontal and lateral images of one study show the same chest. Everything is deterministic given the numpy
``Generator``.

Findings (see :data:`FINDINGS`) and how they are drawn:

* ``lung_opacity`` 1-3 fluffy opacities (each the union of 2-4 Gaussian lobes, radius 3.5-6.5 % of the
  image side), each recorded as a pixel box (x, y, w, h); pneumonia in reports.
* ``consolidation`` a dense lobar opacity bounded by a fissure, air bronchograms in half of them.
* ``atelectasis`` 1-2 plate-like bands in the mid/lower zone with ipsilateral diaphragm elevation.
* ``edema`` bilateral perihilar haze.  ``effusion`` basal fluid with a meniscus (blunted angle).
* ``pneumothorax`` apical/lateral lucent rim with a pleural line; recorded as a boolean mask.
* ``cardiomegaly`` cardiothoracic ratio 0.52-0.66 (normal 0.38-0.52, overlapping as readers disagree near the
  0.5 threshold; AP views magnify the heart by 6 %).
* ``covid19`` bilateral peripheral ground-glass opacities, lower zones.  ``nodule`` a small sharp opacity.
* ``foreign_object`` 1-3 metal objects (rectangles, ellipses, polygons) recorded as Object-CXR annotations.

Severity s is uniform in [0.15, 1]; amplitudes grow linearly with it (stated in :func:`lesions_for`).
Laterality is the patient's side ("right", "left", "bilateral"; for foreign objects the side of the image
midline they lie on; "" for cardiomegaly); zone is
"upper" | "mid" | "lower" (lung thirds from the apex) or "".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import numpy as np

from medvlp_bench.synthetic.phantom import (
    ELLIPSE,
    POLYGON,
    RECTANGLE,
    Anatomy,
    Consolidation,
    Effusion,
    ForeignObject,
    Lesion,
    Opacity,
    PlateAtelectasis,
    Pneumothorax,
    render_frontal,
    render_lateral,
)

FINDINGS = (
    "lung_opacity",
    "consolidation",
    "atelectasis",
    "edema",
    "effusion",
    "pneumothorax",
    "cardiomegaly",
    "covid19",
    "nodule",
    "foreign_object",
)

#: default per-study probability of each finding (independent draws)
DEFAULT_PREVALENCE: dict[str, float] = {
    "lung_opacity": 0.2,
    "consolidation": 0.12,
    "atelectasis": 0.2,
    "edema": 0.15,
    "effusion": 0.2,
    "pneumothorax": 0.08,
    "cardiomegaly": 0.18,
    "covid19": 0.0,
    "nodule": 0.05,
    "foreign_object": 0.12,
}

#: lung-relative level ranges (t from apex to base) of each zone
ZONE_LEVELS = {"upper": (0.12, 0.3), "mid": (0.38, 0.6), "lower": (0.66, 0.85)}


@dataclass(frozen=True)
class Finding:
    """A finding as a report states it: the patient's side, the lung zone and a severity in [0, 1]."""

    laterality: str
    zone: str
    severity: float


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
    """One rendered radiograph and its ground truth (pixel records as in :mod:`.phantom`).

    ``view`` is "PA" | "AP" (frontal) or "LATERAL"; ``boxes`` are the lung-opacity boxes (x, y, w, h) in
    pixels; ``pneumothorax_mask`` is a (H, W) bool array or ``None`` when there is no pneumothorax;
    ``foreign_objects`` are ``(type, [x1, y1, x2, y2, ...])`` in Object-CXR's convention. Lateral views
    carry no pixel records.
    """

    image: np.ndarray
    view: str
    sex: str
    age: int
    findings: Mapping[str, Finding]
    boxes: list[tuple[float, float, float, float]]
    pneumothorax_mask: Optional[np.ndarray]
    foreign_objects: list[tuple[int, list[float]]]
    study: Study

    @property
    def frontal(self) -> bool:
        return self.view in ("PA", "AP")


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def sample_anatomy(rng: np.random.Generator, view: str, sex: str, cardiomegaly: Optional[float] = None) -> Anatomy:
    """Normal anatomy and exposure; ``cardiomegaly`` (a severity) sets the cardiothoracic ratio to
    ``0.5 + 0.16 s`` instead of the normal ``U(0.38, 0.52)``; AP views multiply it by 1.06 and have
    lower lung volumes (bases 3 % higher) and clavicles projected over the apices."""
    apex = _uniform(rng, 0.1, 0.15)
    base = _uniform(rng, 0.74, 0.82) - (0.03 if view == "AP" else 0.0)
    mediastinum = _uniform(rng, 0.06, 0.08)
    lung_width = _uniform(rng, 0.25, 0.3)
    right_dome = base - _uniform(rng, 0.06, 0.1)
    left_dome = right_dome + _uniform(rng, 0.01, 0.03)
    ctr = 0.5 + 0.16 * cardiomegaly if cardiomegaly is not None else _uniform(rng, 0.38, 0.52)
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
        clavicle_y=apex + (_uniform(rng, -0.03, 0.0) if view == "AP" else _uniform(rng, 0.02, 0.06)),
        rib_spacing=_uniform(rng, 0.05, 0.062),
        rib_phase=_uniform(rng, 0.0, 1.0),
        breast=_uniform(rng, 0.03, 0.08) if sex == "F" else 0.0,
        brightness=_uniform(rng, -0.06, 0.06),
        contrast=_uniform(rng, 1.15, 1.5),
        gamma=_uniform(rng, 0.8, 1.25),
        heel=_uniform(rng, -0.12, 0.12),
        noise=_uniform(rng, 0.01, 0.035),
        texture_seed=int(rng.integers(2**62)),
    )


def _zone(rng: np.random.Generator, weights=(0.15, 0.35, 0.5)) -> str:
    return str(rng.choice(("upper", "mid", "lower"), p=weights))


def _side(rng: np.random.Generator) -> str:
    return "right" if rng.random() < 0.5 else "left"


def _level(rng: np.random.Generator, zone: str) -> float:
    return _uniform(rng, *ZONE_LEVELS[zone])


def _lobes(rng: np.random.Generator, count: int, spread: float) -> tuple[tuple[float, float, float], ...]:
    first = ((0.0, 0.0, 1.0),)
    rest = tuple((float(rng.normal(0, spread)), float(rng.normal(0, spread * 0.6)), _uniform(rng, 0.55, 0.95))
                 for _ in range(count - 1))
    return first + rest


def _opacities(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    count = int(rng.choice((1, 2, 3), p=(0.6, 0.3, 0.1)))
    sides = [_side(rng) for _ in range(count)]
    zones = [_zone(rng) for _ in range(count)]
    lesions: list[Lesion] = [
        Opacity(side=side, u=_uniform(rng, 0.3, 0.72), t=_level(rng, zone), radius=_uniform(rng, 0.035, 0.065),
                aspect=_uniform(rng, 0.9, 1.5), amplitude=0.05 + 0.1 * severity,
                lobes=_lobes(rng, int(rng.integers(2, 5)), 0.1), boxed=True)
        for side, zone in zip(sides, zones)
    ]
    laterality = sides[0] if len(set(sides)) == 1 else "bilateral"
    return Finding(laterality, zones[0], severity), lesions


def _covid(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    lesions: list[Lesion] = []
    for side in ("right", "left"):
        for _ in range(int(rng.integers(2, 5))):
            lesions.append(Opacity(side=side, u=_uniform(rng, 0.72, 0.95), t=_uniform(rng, 0.45, 0.9),
                                   radius=_uniform(rng, 0.04, 0.065), aspect=_uniform(rng, 1.2, 1.8),
                                   amplitude=0.05 + 0.07 * severity))
    return Finding("bilateral", "lower", severity), lesions


def _edema(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    lesions: list[Lesion] = [
        Opacity(side=side, u=_uniform(rng, 0.1, 0.2), t=_uniform(rng, 0.42, 0.5), radius=0.08 + 0.04 * severity,
                aspect=1.3, amplitude=0.025 + 0.06 * severity, lobes=_lobes(rng, 3, 0.12))
        for side in ("right", "left")
    ]
    return Finding("bilateral", "mid", severity), lesions


def _consolidation(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    side, lower = _side(rng), bool(rng.random() < 0.7)
    fissure = _uniform(rng, 0.45, 0.6) if lower else _uniform(rng, 0.3, 0.42)
    slope = _uniform(rng, 0.1, 0.4) if lower else _uniform(rng, -0.05, 0.05)
    lesion = Consolidation(side=side, fissure_t=fissure, fissure_slope=slope, lower=lower,
                           amplitude=0.16 + 0.14 * severity, bronchograms=bool(rng.random() < 0.5))
    return Finding(side, "lower" if lower else "upper", severity), [lesion]


def _atelectasis(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    side, zone = _side(rng), _zone(rng, (0.0, 0.3, 0.7))
    t = _level(rng, zone)
    lesions: list[Lesion] = [
        PlateAtelectasis(side=side, u=_uniform(rng, 0.3, 0.65), t=t + 0.08 * k, length=_uniform(rng, 0.1, 0.2),
                         thickness=_uniform(rng, 0.016, 0.028), angle=float(rng.normal(0.0, 0.2)),
                         amplitude=0.18 + 0.15 * severity, elevation=0.015 + 0.035 * severity)
        for k in range(int(rng.integers(1, 3)))
    ]
    return Finding(side, zone, severity), lesions


def _effusion(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    laterality = str(rng.choice(("right", "left", "bilateral"), p=(0.4, 0.4, 0.2)))
    sides = ("right", "left") if laterality == "bilateral" else (laterality,)
    lesions: list[Lesion] = [Effusion(side=side, height=0.04 + 0.14 * severity * _uniform(rng, 0.8, 1.0),
                                      amplitude=_uniform(rng, 0.8, 1.0)) for side in sides]
    return Finding(laterality, "lower", severity), lesions


def _pneumothorax(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    side = _side(rng)
    lesion = Pneumothorax(side=side, depth=0.02 + 0.06 * severity, apex_depth=0.02 + 0.07 * severity)
    return Finding(side, "upper", severity), [lesion]


def _nodule(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    side, zone = _side(rng), _zone(rng, (0.4, 0.4, 0.2))
    lesion = Opacity(side=side, u=_uniform(rng, 0.3, 0.8), t=_level(rng, zone), radius=_uniform(rng, 0.016, 0.028),
                     aspect=_uniform(rng, 0.9, 1.1), amplitude=0.15 + 0.12 * severity, sharpness=3.0)
    return Finding(side, zone, severity), [lesion]


def foreign_object(rng: np.random.Generator, kind: int) -> ForeignObject:
    """One metal object over the chest: a rectangle or ellipse 2-8 % of the image side, or a star-shaped
    polygon with 3-7 vertices at radius 1.5-5 %; points in normalised coordinates (Object-CXR order)."""
    cx, cy = _uniform(rng, 0.15, 0.85), _uniform(rng, 0.1, 0.88)
    amplitude = _uniform(rng, 0.5, 0.9)
    if kind == POLYGON:
        count = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = _uniform(rng, 0.015, 0.05) * rng.uniform(0.6, 1.0, count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1).ravel()
        return ForeignObject(POLYGON, tuple(float(p) for p in points), amplitude)
    half_w, half_h = _uniform(rng, 0.01, 0.04), _uniform(rng, 0.01, 0.04)
    return ForeignObject(kind, (cx - half_w, cy - half_h, cx + half_w, cy + half_h), amplitude)


def _foreign_objects(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Lesion]]:
    count = int(rng.choice((1, 2, 3), p=(0.6, 0.3, 0.1)))
    kinds = rng.choice((RECTANGLE, ELLIPSE, POLYGON), size=count)
    objects = [foreign_object(rng, int(kind)) for kind in kinds]
    sides = {"right" if sum(o.points[0::2]) / len(o.points[0::2]) < 0.5 else "left" for o in objects}
    return Finding(sides.pop() if len(sides) == 1 else "bilateral", "", severity), objects


_SAMPLERS = {
    "lung_opacity": _opacities,
    "consolidation": _consolidation,
    "atelectasis": _atelectasis,
    "edema": _edema,
    "effusion": _effusion,
    "pneumothorax": _pneumothorax,
    "covid19": _covid,
    "nodule": _nodule,
    "foreign_object": _foreign_objects,
}


def lesions_for(rng: np.random.Generator, names: Iterable[str]) -> tuple[dict[str, Finding], list[Lesion]]:
    """Findings and lesions for the named findings (severities U(0.15, 1)); ``cardiomegaly`` has no lesion
    (it is part of the anatomy). Amplitudes (attenuation units): opacity 0.05 + 0.1 s (v1: 0.1 + 0.16 s), consolidation
    0.16 + 0.14 s, plate atelectasis 0.18 + 0.15 s, edema 0.025 + 0.06 s, ground glass 0.05 + 0.07 s,
    nodule 0.15 + 0.12 s; effusion height 0.04 + 0.14 s, pneumothorax rim 0.02 + 0.06 s of the image side."""
    findings: dict[str, Finding] = {}
    lesions: list[Lesion] = []
    for name in FINDINGS:
        if name not in names:
            continue
        severity = _uniform(rng, 0.15, 1.0)
        if name == "cardiomegaly":
            findings[name] = Finding("", "", severity)
            continue
        finding, drawn = _SAMPLERS[name](rng, severity)
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
    names = set(findings)
    sampled, lesions = lesions_for(rng, names)
    cardiomegaly = sampled["cardiomegaly"].severity if "cardiomegaly" in sampled else None
    anatomy = sample_anatomy(rng, view, sex, cardiomegaly)
    return Study(sex=sex, age=age, view=view, anatomy=anatomy, findings=sampled, lesions=tuple(lesions))


def render_study(study: Study, *, lateral: bool = False, size: int = 256) -> Case:
    """Render the frontal (default) or lateral image of ``study`` as a :class:`Case`."""
    if lateral:
        rendering = render_lateral(study.anatomy, study.lesions, size)
        return Case(rendering.image, "LATERAL", study.sex, study.age, study.findings, [], None, [], study)
    rendering = render_frontal(study.anatomy, study.lesions, size)
    return Case(rendering.image, study.view, study.sex, study.age, study.findings, rendering.boxes,
                rendering.pneumothorax_mask, rendering.foreign_objects, study)


def sample_case(rng: np.random.Generator, size: int = 256, prevalence: Optional[Mapping[str, float]] = None, *,
                findings: Optional[Iterable[str]] = None, view: Optional[str] = None) -> Case:
    """Sample a study (see :func:`sample_study`) and render its frontal view."""
    return render_study(sample_study(rng, prevalence, findings=findings, view=view), size=size)
