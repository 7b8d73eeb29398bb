"""Procedural grey-scale chest radiograph phantom: the normal anatomy, the lesion interface and the two renderers.

Coordinates
    An image is square, ``size`` pixels a side. Geometry is given in normalised image units:
    ``x = (column + 0.5) / size`` grows to the image right, ``y = (row + 0.5) / size`` grows downwards.
    Records (boxes, masks, object points) are in pixels of the rendered image: ``x`` = column, ``y`` = row,
    (0, 0) the top-left corner of the top-left pixel. Frontal views are displayed as radiologists read them:
    the patient's right lung on the image left.

Lung-relative coordinates
    Lesions are placed by ``(side, u, t)``: ``side`` is the patient's ``"right"`` or ``"left"``; ``u`` in [0, 1]
    runs from the lung's medial (mediastinal) edge to its lateral (rib) edge; ``t`` in [0, 1] runs from the apex
    to the costophrenic angle. Zones: upper t < 1/3, mid 1/3 <= t < 2/3, lower t >= 2/3. Lengths of lesions
    are fractions of the image side.

Image formation
    The renderer composes a dimensionless attenuation map ``D`` (soft tissue 0.5, aerated lung 0.5 - 0.38,
    bone adds 0.08-0.2, metal adds >= 0.6) and maps it to grey values::

        I = clip(brightness + contrast * D, 0, 1) ** gamma * (1 + heel * (y - 0.5)) + noise * T

    quantised to uint8 (0 = black = air, 255 = white = metal); T is unit-variance triangular noise (the sum of two
    uniform random bytes, centred and scaled: nearly Gaussian and seven times cheaper to draw). Edges are
    anti-aliased with a linear ramp 1.5 px wide; lung markings are the zero-level curves of smooth random noise,
    brighter near the hilum.

Lesions
    A lesion is a frozen dataclass deriving from :class:`Lesion`; the findings (:mod:`.findings`) define them. The
    frontal renderer asks every lesion, in order, for a hemidiaphragm lift (:meth:`Lesion.diaphragm_lift`), lets it
    reshape the pleural spaces (:meth:`Lesion.reshape`, e.g. collapse a lung), draws the normal anatomy, and then
    lets each lesion add its attenuation and its records (:meth:`Lesion.draw`); the lateral renderer calls
    :meth:`Lesion.draw_lateral`. Records are kept by finding name in :attr:`FrontalCanvas.records`.

Cost: about 2-4 ms for a 256 x 256 frontal image on one CPU core (vectorised numpy on cached grids;
lesions are drawn in local windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from medvlp_bench_plugins.synthetic.raster import axes, curves, gaussian_window, local, placed, ramp, \
    smooth_noise, window

#: image-x direction of each patient side on a frontal view (patient's right is on the image left)
SIDE_SIGN = {"right": -1.0, "left": 1.0}

SOFT_TISSUE = 0.5
LUNG_AIR = 0.38
#: standard deviation of the sum of two uniform random bytes: sqrt(2 (256^2 - 1) / 12)
TRIANGULAR_STD = float(np.sqrt(2 * (256**2 - 1) / 12))
#: attenuation added along the visceral pleural line of a collapsed lung and removed in its lucent gap (synthetic
#: v2: 0.05 and 0.025, about 40 % of v1's 0.14 and 0.06, so the rim is faint as on real films)
PLEURAL_LINE = 0.05
GAP_LUCENCY = 0.025


@dataclass(frozen=True)
class Anatomy:
    """The normal chest of one patient and the exposure of one radiograph (lengths in image-side fractions).

    ``lung_width`` is the width of one lung at its base; ``mediastinum`` the half-width of the mediastinum, so
    the internal thoracic width is ``2 * (mediastinum + lung_width)`` and the heart's width is
    ``ctr`` times that (cardiothoracic ratio; normal < 0.5). ``dome_top`` is the height of each hemidiaphragm
    dome (patient's right, left), ``base_y`` the level of the costophrenic angles.
    """

    view: str
    center_x: float
    apex_y: float
    base_y: float
    lung_width: float
    mediastinum: float
    dome_top: tuple[float, float]
    ctr: float
    heart_y: float
    clavicle_y: float
    rib_spacing: float
    rib_phase: float
    breast: float
    brightness: float
    contrast: float
    gamma: float
    heel: float
    noise: float
    texture_seed: int

    def side_x(self, side: str, u: float) -> float:
        """Image x of lung-relative position ``u`` (0 medial edge, 1 lateral edge at the base)."""
        return self.center_x + SIDE_SIGN[side] * (self.mediastinum + u * self.lung_width)

    def level_y(self, t: float) -> float:
        """Image y of lung-relative level ``t`` (0 apex, 1 costophrenic angle)."""
        return self.apex_y + t * (self.base_y - self.apex_y)


def _thorax_window(anatomy: Anatomy, size: int, margin: float = 0.03) -> tuple[slice, slice]:
    """The window holding both lungs and ribs (apex to costophrenic angles, chest wall to chest wall)."""
    half = anatomy.mediastinum + anatomy.lung_width + margin
    return window(size, anatomy.center_x - half, anatomy.apex_y - margin, anatomy.center_x + half, anatomy.base_y)


def lung_mask(anatomy: Anatomy, side: str, size: int, lateral_inset: float = 0.0, apex_inset: float = 0.0,
              dome_shift: float = 0.0) -> np.ndarray:
    """Soft (0..1, float32, (size, size)) mask of one lung on a frontal view, heart not removed.

    At level t = (y - apex) / (base - apex) the lung spans ``w(t) = W (0.88 + 0.12 t) sqrt(1 - (1 - min(t/0.55,
    1))^2)`` laterally from the medial edge (a rounded apex); the base is the hemidiaphragm
    ``y = dome + (base - dome) clip((d - 0.35 W) / (0.65 W), 0, 1)^2`` of lateral distance d: flat medially,
    falling to a sharp costophrenic angle.
    ``lateral_inset`` (tapering to 30 % at the base), ``apex_inset`` and ``dome_shift`` (upwards) shrink it.
    """
    sign = SIDE_SIGN[side]
    width = anatomy.lung_width
    medial = anatomy.center_x + sign * anatomy.mediastinum
    x0, x1 = sorted((medial, medial + sign * width))
    rows, cols = window(size, x0, anatomy.apex_y, x1, anatomy.base_y)
    x, y = local(size, rows, cols)
    dome = anatomy.dome_top[0 if side == "right" else 1] - dome_shift
    apex = anatomy.apex_y + apex_inset
    t = np.clip((y - anatomy.apex_y) / (anatomy.base_y - anatomy.apex_y), 0.0, 1.0)
    profile = np.sqrt(1.0 - np.square(1.0 - np.minimum(t / 0.55, 1.0)))
    half = width * (0.88 + 0.12 * t) * profile - lateral_inset * (1.0 - 0.7 * t)
    depth = sign * (x - medial)
    fall = np.square(np.clip((depth - 0.35 * width) / (0.65 * width), 0.0, 1.0))
    base = dome + (anatomy.base_y - dome - dome_shift * 0.3) * fall
    values = ramp(half - depth, size)
    values *= ramp(base - y, size)
    values *= ramp(depth, size) * ramp(y - apex, size)
    return placed(size, rows, cols, values)


def heart_mask(anatomy: Anatomy, size: int) -> np.ndarray:
    """Soft mask of the cardiac silhouette: an ellipse of width ``ctr * 2 (mediastinum + lung_width)``, 30 % of
    it right of the midline, half-height 0.75 of its half-width, resting on the left hemidiaphragm."""
    thorax = 2.0 * (anatomy.mediastinum + anatomy.lung_width)
    half_width = 0.5 * anatomy.ctr * thorax
    centre_x = anatomy.center_x + 0.4 * half_width
    half_height = 0.75 * half_width
    rows, cols = window(size, centre_x - half_width, anatomy.heart_y - half_height, centre_x + half_width,
                         anatomy.dome_top[1] + 0.02)
    x, y = local(size, rows, cols)
    radius2 = np.square((x - centre_x) / half_width) + np.square((y - anatomy.heart_y) / half_height)
    values = ramp(0.5 * (1.0 - radius2) * half_width, size) * ramp(anatomy.dome_top[1] + 0.01 - y, size)
    return placed(size, rows, cols, values)


def _body(anatomy: Anatomy, size: int) -> np.ndarray:
    """Soft-tissue attenuation of the trunk: chest wall outside the lungs, a neck above the shoulders,
    thicker towards the abdomen (``0.5 * (0.9 + 0.2 y)``)."""
    x, y = axes(size)
    outer = anatomy.mediastinum + anatomy.lung_width + 0.07
    shoulder = anatomy.apex_y - 0.06
    half = np.where(y > shoulder, outer - 0.05 * np.clip((anatomy.apex_y + 0.1 - y) / 0.16, 0, 1),
                    0.11 + (outer - 0.16) * np.clip(1.0 - (shoulder - y) / 0.05, 0, 1))
    body = ramp(half - np.abs(x - anatomy.center_x), size)
    body *= SOFT_TISSUE * (0.9 + 0.2 * y)
    return body


def _add_ribs(anatomy: Anatomy, size: int, density: np.ndarray) -> None:
    """Add rib shadows: posterior ribs ``y = y_k - 0.35 d + 1.6 d^2`` and fainter anterior ribs
    ``y = y_k + 0.45 d`` (d = distance from the midline), bands where ``cos(2 pi phase) > 0.3``."""
    rows, cols = _thorax_window(anatomy, size)
    x, y = local(size, rows, cols)
    d = np.abs(x - anatomy.center_x)
    inside = ramp(anatomy.mediastinum + anatomy.lung_width + 0.025 - d, size)
    vertical = ramp(y - (anatomy.apex_y - 0.03), size) * ramp(anatomy.base_y - y, size)
    offset = anatomy.rib_phase * anatomy.rib_spacing
    posterior = (2 * np.pi / anatomy.rib_spacing) * (y + 0.35 * d - 1.6 * np.square(d) + offset)
    anterior = (2 * np.pi / (1.3 * anatomy.rib_spacing)) * (y - 0.45 * d + offset)
    bands = np.maximum(np.cos(posterior) - 0.3, 0.0)
    bands += 0.4 * np.maximum(np.cos(anterior) - 0.5, 0.0)
    bands *= 0.065 * inside
    bands *= vertical
    density[rows, cols] += bands


def _add_clavicles(anatomy: Anatomy, size: int, density: np.ndarray) -> None:
    """Add both clavicles: bars 0.022 thick along ``y = c - 0.3 d + 0.6 (d - 0.15)^2`` for 0.03 < d < 0.3."""
    for sign in (-1.0, 1.0):
        x0, x1 = sorted((anatomy.center_x + sign * 0.02, anatomy.center_x + sign * 0.31))
        rows, cols = window(size, x0, anatomy.clavicle_y - 0.12, x1, anatomy.clavicle_y + 0.04)
        x, y = local(size, rows, cols)
        d = np.abs(x - anatomy.center_x)
        centre = anatomy.clavicle_y - 0.3 * d + 0.6 * np.square(d - 0.15)
        along = ramp(d - 0.03, size) * ramp(0.3 - d, size)
        density[rows, cols] += 0.13 * ramp(0.011 - np.abs(y - centre), size) * along


def _add_spine(anatomy: Anatomy, size: int, density: np.ndarray) -> None:
    """Add the vertebral column: a band 0.07 wide, ``0.05 + 0.02 cos(2 pi y / 0.045)`` (bodies and discs)."""
    rows, cols = window(size, anatomy.center_x - 0.04, 0.0, anatomy.center_x + 0.04, 1.0)
    x, y = local(size, rows, cols)
    band = ramp(0.035 - np.abs(x - anatomy.center_x), size)
    density[rows, cols] += band * (0.05 + 0.02 * np.cos(2 * np.pi * (y - anatomy.apex_y) / 0.045))




class Lesion:
    """What a lesion primitive offers the renderers; every hook does nothing unless a lesion overrides it."""

    def diaphragm_lift(self) -> Optional[tuple[str, float]]:
        """(patient side, upward shift in image-side fractions) of a hemidiaphragm this lesion raises, or None."""
        return None

    def reshape(self, canvas: "FrontalCanvas") -> None:
        """Change the pleural spaces before the anatomy is drawn (see :meth:`FrontalCanvas.collapse`)."""

    def draw(self, canvas: "FrontalCanvas", density: np.ndarray, rng: np.random.Generator) -> None:
        """Add this lesion's attenuation to a frontal view's ``density`` and record what it marks."""

    def draw_lateral(self, density: np.ndarray, lung: np.ndarray, anatomy: Anatomy, size: int) -> None:
        """Add this lesion's projection to a lateral view (``lung`` is that view's soft lung mask)."""


@dataclass
class Rendering:
    """A rendered radiograph and what was recorded on it, by finding name (pixel records, see the module
    docstring; what each finding records is stated in its module)."""

    image: np.ndarray
    records: dict[str, Any] = field(default_factory=dict)


class FrontalCanvas:
    """A frontal view being drawn: its lung masks (collapses already shape them) and what it recorded.

    ``lungs`` are the pleural spaces (heart removed), ``aerated`` the parts of them holding lung (and markings);
    a collapse's ``gap`` between the two is lucent and bounded by a bright pleural line.
    """

    def __init__(self, anatomy: Anatomy, size: int, lesions: Sequence[Lesion]):
        self.anatomy, self.size = anatomy, size
        self.heart = heart_mask(anatomy, size)
        self.elevation = dict(lift for lift in (lesion.diaphragm_lift() for lesion in lesions) if lift is not None)
        self.lungs = {side: lung_mask(anatomy, side, size, dome_shift=self.elevation.get(side, 0.0))
                      * (1.0 - self.heart) for side in ("right", "left")}
        self.aerated = dict(self.lungs)
        self.gap = np.zeros((size, size), np.float32)
        self.pleura = np.zeros((size, size), np.float32)
        self.collapsed = False
        self.records: dict[str, Any] = {}
        for lesion in lesions:
            lesion.reshape(self)

    def record(self, name: str, item: Any) -> None:
        """Append ``item`` to the list recorded under ``name``."""
        self.records.setdefault(name, []).append(item)

    def mark(self, name: str, mask: np.ndarray) -> None:
        """Add a boolean ``mask`` to the union recorded under ``name``."""
        self.records[name] = mask if name not in self.records else self.records[name] | mask

    def collapse(self, side: str, depth: float, apex_depth: float) -> np.ndarray:
        """Retract one lung from the chest wall by ``depth`` laterally and ``apex_depth`` at the apex (tapering to
        30 % at the base): ``pleura = 4 c (1 - c) L^8`` marks the edge of the collapsed lung c inside the pleural
        space L; returns the gap's mask, where ``L - c`` exceeds 0.5."""
        full = self.lungs[side]
        collapsed = lung_mask(self.anatomy, side, self.size, depth, apex_depth,
                              self.elevation.get(side, 0.0)) * (1.0 - self.heart)
        gap = np.clip(full - collapsed, 0.0, 1.0)
        self.aerated[side] = collapsed
        self.gap += gap
        self.pleura += 4.0 * collapsed * (1.0 - collapsed) * full ** 8
        self.collapsed = True
        return gap > 0.5

    def base(self, rng: np.random.Generator) -> np.ndarray:
        """Normal anatomy: body, lungs with markings, heart, mediastinum, hila, bones, breasts; a collapse's gap is
        lucent (``- GAP_LUCENCY``) and without markings, its pleural line bright (``+ PLEURAL_LINE``)."""
        a, size = self.anatomy, self.size
        x, y = axes(size)
        density = _body(a, size)
        density -= LUNG_AIR * (self.lungs["right"] + self.lungs["left"])
        density += 0.03 * self.heart
        rows, cols = _thorax_window(a, size)
        markings = curves(smooth_noise(rng, size, max(size // 6, 8))[rows, cols], 0.15)
        hilar = np.exp(-2.5 * np.maximum(np.abs(x[:, cols] - a.center_x) - a.mediastinum, 0.0) / a.lung_width) + 0.15
        markings *= 0.06 * hilar
        markings *= self.aerated["right"][rows, cols] + self.aerated["left"][rows, cols]
        density[rows, cols] += markings
        _add_ribs(a, size, density)
        _add_spine(a, size, density)
        _add_clavicles(a, size, density)
        for side, sign in SIDE_SIGN.items():
            rows, cols, blob = gaussian_window(size, a.center_x + sign * (a.mediastinum + 0.03), a.level_y(0.42),
                                               0.03, 0.05)
            density[rows, cols] += 0.12 * blob * self.lungs[side][rows, cols]
            if a.breast > 0:
                rows, cols, blob = gaussian_window(size, a.side_x(side, 0.7), a.level_y(1.0), 0.11, 0.08)
                density[rows, cols] += a.breast * blob
        if self.collapsed:
            density += PLEURAL_LINE * self.pleura - GAP_LUCENCY * self.gap
        return density


def expose(density: np.ndarray, anatomy: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Grey values of an attenuation map (formula in the module docstring), as (H, W) uint8."""
    size = density.shape[0]
    _, y = axes(size)
    grey = np.multiply(density, np.float32(anatomy.contrast))
    grey += np.float32(anatomy.brightness)
    np.clip(grey, 0.0, 1.0, out=grey)
    np.power(grey, np.float32(anatomy.gamma), out=grey)
    grey *= (1.0 + anatomy.heel * (y - 0.5)) * np.float32(255.0)
    count = density.size
    raw = np.frombuffer(rng.bytes(2 * count), np.uint8).reshape(2, *density.shape)
    triangular = raw.sum(axis=0, dtype=np.int16) - np.int16(255)
    grey += triangular * np.float32(anatomy.noise * 255.0 / TRIANGULAR_STD)
    grey += np.float32(0.5)
    np.clip(grey, 0, 255, out=grey)
    return grey.astype(np.uint8)


def render_frontal(anatomy: Anatomy, lesions: Sequence[Lesion], size: int = 256) -> Rendering:
    """Render a frontal (PA or AP) radiograph of ``anatomy`` with ``lesions``.

    Deterministic: the random textures and noise come from ``anatomy.texture_seed``, so rendering the same
    anatomy without lesions gives the lesion-free twin of an image, pixel for pixel outside the lesions.
    """
    rng = np.random.default_rng(anatomy.texture_seed)
    canvas = FrontalCanvas(anatomy, size, lesions)
    density = canvas.base(rng)
    lesion_rng = np.random.default_rng([anatomy.texture_seed, 1])
    for lesion in lesions:
        lesion.draw(canvas, density, lesion_rng)
    image = expose(density, anatomy, np.random.default_rng([anatomy.texture_seed, 2]))
    return Rendering(image=image, records=canvas.records)


def render_lateral(anatomy: Anatomy, lesions: Sequence[Lesion], size: int = 256) -> Rendering:
    """Render a left-lateral radiograph (patient facing the image left) of the same chest.

    The trunk is an ellipse; the lungs one dark ovoid from the sternum (x = 0.27) to the spine (x = 0.74);
    the heart sits antero-inferiorly (its width scales with ``ctr``); the spine is a column of vertebral
    bodies posteriorly. Each lesion projects itself (:meth:`Lesion.draw_lateral`). Nothing is recorded.
    """
    rng = np.random.default_rng(anatomy.texture_seed)
    x, y = axes(size)
    a = anatomy
    span = a.base_y - a.apex_y
    trunk = ramp(1.0 - np.square((x - 0.5) / 0.36) - np.square((y - 0.62) / 0.62), size)
    body = trunk * (SOFT_TISSUE * (0.9 + 0.2 * y))
    front, back = 0.27, 0.74
    dome = a.base_y - 0.06 + 0.25 * np.square(x - 0.62)
    t = np.clip((y - a.apex_y) / span, 0.0, 1.0)
    round_top = np.sqrt(1.0 - np.square(1.0 - np.minimum(t / 0.4, 1.0)))
    centre = (front + back) / 2
    half = (back - front) / 2 * round_top
    lung = ramp(half - np.abs(x - centre), size) * ramp(dome - y, size) * ramp(y - a.apex_y, size)
    heart_r = 0.55 * a.ctr * (a.mediastinum + a.lung_width)
    heart = ramp(0.5 * (1.0 - np.square((x - front - heart_r * 0.9) / heart_r)
                        - np.square((y - a.heart_y - 0.02) / (heart_r * 0.95))) * heart_r, size)
    lung = lung * (1.0 - heart)
    markings = curves(smooth_noise(rng, size, max(size // 7, 8)), 0.22)
    density = body - LUNG_AIR * lung + 0.035 * markings * lung + 0.03 * heart
    spine = ramp(0.04 - np.abs(x - 0.8), size) * (0.08 + 0.04 * np.cos(2 * np.pi * y / 0.045))
    sternum = 0.08 * ramp(0.008 - np.abs(x - front + 0.012), size) * ramp(a.base_y - y, size)
    density += (spine + sternum) * trunk
    for lesion in lesions:
        lesion.draw_lateral(density, lung, a, size)
    image = expose(density, a, np.random.default_rng([a.texture_seed, 3]))
    return Rendering(image=image)
