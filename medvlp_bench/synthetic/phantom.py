"""Procedural grey-scale chest radiograph phantom: anatomy, lesion primitives and the two renderers.

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
    uniform random bytes, centred and scaled: nearly Gaussian and seven times cheaper to draw). Edges are anti-aliased with a linear ramp
    1.5 px wide; lung markings are the zero-level curves of smooth random noise, brighter near the hilum.

Cost: about 2-4 ms for a 256 x 256 frontal image on one CPU core (vectorised numpy on cached grids;
lesions are drawn in local windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

#: image-x direction of each patient side on a frontal view (patient's right is on the image left)
SIDE_SIGN = {"right": -1.0, "left": 1.0}
#: Object-CXR annotation types
RECTANGLE, ELLIPSE, POLYGON = 0, 1, 2

SOFT_TISSUE = 0.5
LUNG_AIR = 0.38
#: standard deviation of the sum of two uniform random bytes: sqrt(2 (256^2 - 1) / 12)
TRIANGULAR_STD = float(np.sqrt(2 * (256**2 - 1) / 12))
#: attenuation added along a pneumothorax's visceral pleural line and removed in its lucent gap (synthetic v2:
#: 0.05 and 0.025, about 40 % of v1's 0.14 and 0.06, so the rim is faint as on real films)
PLEURAL_LINE = 0.05
PNEUMOTHORAX_LUCENCY = 0.025


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


@dataclass(frozen=True)
class Opacity:
    """Fluffy airspace opacity: a sum of Gaussian lobes added to the lung's attenuation.

    ``lobes`` are (du, dt, scale) offsets of each lobe from (u, t), in lung-relative units, and its radius
    factor; lobe k adds ``amplitude * exp(-((x-xk)/(rx*sk))^2 - ((y-yk)/(ry*sk))^2)`` with ``rx = radius``,
    ``ry = radius * aspect``; the sum is clipped at ``amplitude`` and masked by the lung. With ``boxed`` the
    rendering records its bounding box (where the opacity exceeds 30 % of its peak) as a lung-opacity box.
    ``sharpness`` > 1 steepens the profile (``exp(-r^(2*sharpness))``: nodules).
    """

    side: str
    u: float
    t: float
    radius: float
    aspect: float
    amplitude: float
    lobes: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 1.0),)
    boxed: bool = False
    sharpness: float = 1.0


@dataclass(frozen=True)
class Consolidation:
    """Dense lobar opacity bounded by a fissure, with optional air bronchograms.

    The lobe is the part of the lung below (``lower=True``) or above the fissure line through
    (u=0, t=fissure_t) tilted by ``fissure_slope`` (dt per du); at distance s beyond the fissure the
    attenuation rises by ``amplitude * min(1, 1.2 - s / (0.9 H))`` (H the lung height: sharp at the fissure,
    fading far from it); air bronchograms (dark branching curves, zero-levels of smooth noise) subtract
    ``0.35 * amplitude`` inside it.
    """

    side: str
    fissure_t: float
    fissure_slope: float
    lower: bool
    amplitude: float
    bronchograms: bool


@dataclass(frozen=True)
class PlateAtelectasis:
    """Plate-like (discoid) atelectasis: a thin band of length ``length`` and thickness ``thickness`` centred
    at (u, t), tilted by ``angle`` radians, adding ``amplitude``; the ipsilateral hemidiaphragm rises by
    ``elevation`` (volume loss)."""

    side: str
    u: float
    t: float
    length: float
    thickness: float
    angle: float
    amplitude: float
    elevation: float


@dataclass(frozen=True)
class Effusion:
    """Pleural effusion: fluid fills the lung base up to ``height`` above the costophrenic level at the lateral
    wall, with a meniscus sloping down medially (``height * (1 - 0.6 * (1 - u)^0.5)`` at position u), blunting
    the angle; inside the fluid (its surface a 0.02 ramp) the lung attenuation returns towards soft tissue
    (``+ amplitude * 0.38``)."""

    side: str
    height: float
    amplitude: float


@dataclass(frozen=True)
class Pneumothorax:
    """Pneumothorax: the visceral pleura retracts from the chest wall by ``depth`` laterally and
    ``apex_depth`` at the apex (tapering to 30 % of ``depth`` at the base); the gap is lucent (attenuation
    ``- PNEUMOTHORAX_LUCENCY``) and without markings, and the pleural line is a faint 1-2 px bright curve
    (``+ PLEURAL_LINE``). Its pixels form the mask."""

    side: str
    depth: float
    apex_depth: float


@dataclass(frozen=True)
class ForeignObject:
    """A radiopaque foreign object (metal, attenuation ``+ amplitude``), stored in pixels as Object-CXR does:
    ``kind`` 0 rectangle ``(x1, y1, x2, y2)``, 1 ellipse (its box ``x1, y1, x2, y2``), 2 polygon
    ``(x1, y1, x2, y2, ...)``; ``points`` are normalised image coordinates in that order."""

    kind: int
    points: tuple[float, ...]
    amplitude: float


Lesion = Union[Opacity, Consolidation, PlateAtelectasis, Effusion, Pneumothorax, ForeignObject]


@dataclass
class Rendering:
    """A rendered radiograph and what was drawn on it (pixel records, see the module docstring)."""

    image: np.ndarray
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    pneumothorax_mask: Optional[np.ndarray] = None
    foreign_objects: list[tuple[int, list[float]]] = field(default_factory=list)


@lru_cache(maxsize=8)
def _axes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates: a (1, size) row of x and a (size, 1) column of y."""
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    centres.setflags(write=False)
    return centres[None, :], centres[:, None]


def _ramp(distance: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased inside-indicator of a signed distance (normalised units, > 0 inside): 0..1 over 1.5 px."""
    ramp = np.multiply(distance, np.float32(size / 1.5))
    ramp += np.float32(0.5)
    np.maximum(ramp, 0.0, out=ramp)
    return np.minimum(ramp, 1.0, out=ramp)


def _window(size: int, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
    """Row and column slices of the pixels whose centres may lie in the normalised box [x0, x1] x [y0, y1]."""
    c0, c1 = max(int(np.floor(x0 * size)), 0), min(int(np.ceil(x1 * size)) + 1, size)
    r0, r1 = max(int(np.floor(y0 * size)), 0), min(int(np.ceil(y1 * size)) + 1, size)
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


def _local(size: int, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """The x row and y column of a window (see :func:`_axes`)."""
    x, y = _axes(size)
    return x[:, cols], y[rows]


def _placed(size: int, rows: slice, cols: slice, local: np.ndarray) -> np.ndarray:
    """A (size, size) float32 array, zero except ``local`` in the window."""
    full = np.zeros((size, size), np.float32)
    full[rows, cols] = local
    return full


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Unit-variance random field, smooth over ``size / cells`` pixels (bilinear upsampling of white noise)."""
    coarse = rng.standard_normal((cells, cells), dtype=np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.BILINEAR))


def _curves(noise: np.ndarray, width: float) -> np.ndarray:
    """Thin curvy lines: ``exp(-(noise / width)^2)``, 1 on the zero-level curves of a smooth field."""
    return np.exp(-np.square(noise * np.float32(1.0 / width)))


def _thorax_window(anatomy: Anatomy, size: int, margin: float = 0.03) -> tuple[slice, slice]:
    """The window holding both lungs and ribs (apex to costophrenic angles, chest wall to chest wall)."""
    half = anatomy.mediastinum + anatomy.lung_width + margin
    return _window(size, anatomy.center_x - half, anatomy.apex_y - margin, anatomy.center_x + half, anatomy.base_y)


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
    rows, cols = _window(size, x0, anatomy.apex_y, x1, anatomy.base_y)
    x, y = _local(size, rows, cols)
    dome = anatomy.dome_top[0 if side == "right" else 1] - dome_shift
    apex = anatomy.apex_y + apex_inset
    t = np.clip((y - anatomy.apex_y) / (anatomy.base_y - anatomy.apex_y), 0.0, 1.0)
    profile = np.sqrt(1.0 - np.square(1.0 - np.minimum(t / 0.55, 1.0)))
    half = width * (0.88 + 0.12 * t) * profile - lateral_inset * (1.0 - 0.7 * t)
    depth = sign * (x - medial)
    fall = np.square(np.clip((depth - 0.35 * width) / (0.65 * width), 0.0, 1.0))
    base = dome + (anatomy.base_y - dome - dome_shift * 0.3) * fall
    local = _ramp(half - depth, size)
    local *= _ramp(base - y, size)
    local *= _ramp(depth, size) * _ramp(y - apex, size)
    return _placed(size, rows, cols, local)


def heart_mask(anatomy: Anatomy, size: int) -> np.ndarray:
    """Soft mask of the cardiac silhouette: an ellipse of width ``ctr * 2 (mediastinum + lung_width)``, 30 % of
    it right of the midline, half-height 0.75 of its half-width, resting on the left hemidiaphragm."""
    thorax = 2.0 * (anatomy.mediastinum + anatomy.lung_width)
    half_width = 0.5 * anatomy.ctr * thorax
    centre_x = anatomy.center_x + 0.4 * half_width
    half_height = 0.75 * half_width
    rows, cols = _window(size, centre_x - half_width, anatomy.heart_y - half_height, centre_x + half_width,
                         anatomy.dome_top[1] + 0.02)
    x, y = _local(size, rows, cols)
    radius2 = np.square((x - centre_x) / half_width) + np.square((y - anatomy.heart_y) / half_height)
    local = _ramp(0.5 * (1.0 - radius2) * half_width, size) * _ramp(anatomy.dome_top[1] + 0.01 - y, size)
    return _placed(size, rows, cols, local)


def _body(anatomy: Anatomy, size: int) -> np.ndarray:
    """Soft-tissue attenuation of the trunk: chest wall outside the lungs, a neck above the shoulders,
    thicker towards the abdomen (``0.5 * (0.9 + 0.2 y)``)."""
    x, y = _axes(size)
    outer = anatomy.mediastinum + anatomy.lung_width + 0.07
    shoulder = anatomy.apex_y - 0.06
    half = np.where(y > shoulder, outer - 0.05 * np.clip((anatomy.apex_y + 0.1 - y) / 0.16, 0, 1),
                    0.11 + (outer - 0.16) * np.clip(1.0 - (shoulder - y) / 0.05, 0, 1))
    body = _ramp(half - np.abs(x - anatomy.center_x), size)
    body *= SOFT_TISSUE * (0.9 + 0.2 * y)
    return body


def _add_ribs(anatomy: Anatomy, size: int, density: np.ndarray) -> None:
    """Add rib shadows: posterior ribs ``y = y_k - 0.35 d + 1.6 d^2`` and fainter anterior ribs
    ``y = y_k + 0.45 d`` (d = distance from the midline), bands where ``cos(2 pi phase) > 0.3``."""
    rows, cols = _thorax_window(anatomy, size)
    x, y = _local(size, rows, cols)
    d = np.abs(x - anatomy.center_x)
    inside = _ramp(anatomy.mediastinum + anatomy.lung_width + 0.025 - d, size)
    vertical = _ramp(y - (anatomy.apex_y - 0.03), size) * _ramp(anatomy.base_y - y, size)
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
        rows, cols = _window(size, x0, anatomy.clavicle_y - 0.12, x1, anatomy.clavicle_y + 0.04)
        x, y = _local(size, rows, cols)
        d = np.abs(x - anatomy.center_x)
        centre = anatomy.clavicle_y - 0.3 * d + 0.6 * np.square(d - 0.15)
        along = _ramp(d - 0.03, size) * _ramp(0.3 - d, size)
        density[rows, cols] += 0.13 * _ramp(0.011 - np.abs(y - centre), size) * along


def _add_spine(anatomy: Anatomy, size: int, density: np.ndarray) -> None:
    """Add the vertebral column: a band 0.07 wide, ``0.05 + 0.02 cos(2 pi y / 0.045)`` (bodies and discs)."""
    rows, cols = _window(size, anatomy.center_x - 0.04, 0.0, anatomy.center_x + 0.04, 1.0)
    x, y = _local(size, rows, cols)
    band = _ramp(0.035 - np.abs(x - anatomy.center_x), size)
    density[rows, cols] += band * (0.05 + 0.02 * np.cos(2 * np.pi * (y - anatomy.apex_y) / 0.045))


def _gaussian_window(size: int, cx: float, cy: float, rx: float, ry: float, sharpness: float = 1.0):
    """``exp(-(r^2)^sharpness)`` with r the (rx, ry)-scaled distance from (cx, cy), in a 3-radius window."""
    x, y = _axes(size)
    reach = 3.0 / sharpness ** 0.5
    rows, cols = _window(size, cx - reach * rx, cy - reach * ry, cx + reach * rx, cy + reach * ry)
    r2 = np.square((x[:, cols] - cx) / rx) + np.square((y[rows] - cy) / ry)
    return rows, cols, np.exp(-(r2 ** sharpness if sharpness != 1.0 else r2))


def _box_of(field_: np.ndarray, rows: slice, cols: slice,
            threshold: float) -> Optional[tuple[float, float, float, float]]:
    """Pixel box (x, y, w, h) of the pixels of a windowed field above ``threshold``, or ``None``."""
    hit = field_ > threshold
    if not hit.any():
        return None
    rr = np.flatnonzero(hit.any(axis=1))
    cc = np.flatnonzero(hit.any(axis=0))
    x0, y0 = cols.start + cc[0], rows.start + rr[0]
    return float(x0), float(y0), float(cc[-1] - cc[0] + 1), float(rr[-1] - rr[0] + 1)


class _Canvas:
    """A frontal view being drawn: its lung masks (pneumothoraces already shape them) and what it recorded.

    ``lungs`` are the pleural spaces (heart removed), ``aerated`` the parts of them holding lung (and markings);
    a pneumothorax's ``gap`` between the two is lucent and bounded by a bright pleural line.
    """

    def __init__(self, anatomy: Anatomy, size: int, lesions: Sequence[Lesion]):
        self.anatomy, self.size = anatomy, size
        self.heart = heart_mask(anatomy, size)
        elevation = {lesion.side: lesion.elevation for lesion in lesions if isinstance(lesion, PlateAtelectasis)}
        self.lungs = {side: lung_mask(anatomy, side, size, dome_shift=elevation.get(side, 0.0)) * (1.0 - self.heart)
                      for side in ("right", "left")}
        self.aerated = dict(self.lungs)
        self.gap = np.zeros((size, size), np.float32)
        self.pleura = np.zeros((size, size), np.float32)
        self.pneumothorax_mask: Optional[np.ndarray] = None
        self.boxes: list[tuple[float, float, float, float]] = []
        self.objects: list[tuple[int, list[float]]] = []
        for lesion in lesions:
            if isinstance(lesion, Pneumothorax):
                self._collapse(lesion, elevation.get(lesion.side, 0.0))

    def _collapse(self, lesion: Pneumothorax, dome_shift: float) -> None:
        """Retract one lung from the chest wall: ``pleura = 4 c (1 - c) L^8`` marks the edge of the collapsed
        lung c inside the pleural space L; the mask is where the gap ``L - c`` exceeds 0.5."""
        full = self.lungs[lesion.side]
        collapsed = lung_mask(self.anatomy, lesion.side, self.size, lesion.depth, lesion.apex_depth,
                              dome_shift) * (1.0 - self.heart)
        gap = np.clip(full - collapsed, 0.0, 1.0)
        self.aerated[lesion.side] = collapsed
        self.gap += gap
        self.pleura += 4.0 * collapsed * (1.0 - collapsed) * full ** 8
        mask = gap > 0.5
        self.pneumothorax_mask = mask if self.pneumothorax_mask is None else self.pneumothorax_mask | mask

    def base(self, rng: np.random.Generator) -> np.ndarray:
        """Normal anatomy: body, lungs with markings, heart, mediastinum, hila, bones, breasts."""
        a, size = self.anatomy, self.size
        x, y = _axes(size)
        density = _body(a, size)
        density -= LUNG_AIR * (self.lungs["right"] + self.lungs["left"])
        density += 0.03 * self.heart
        rows, cols = _thorax_window(a, size)
        markings = _curves(_smooth_noise(rng, size, max(size // 6, 8))[rows, cols], 0.15)
        hilar = np.exp(-2.5 * np.maximum(np.abs(x[:, cols] - a.center_x) - a.mediastinum, 0.0) / a.lung_width) + 0.15
        markings *= 0.06 * hilar
        markings *= self.aerated["right"][rows, cols] + self.aerated["left"][rows, cols]
        density[rows, cols] += markings
        _add_ribs(a, size, density)
        _add_spine(a, size, density)
        _add_clavicles(a, size, density)
        for side, sign in SIDE_SIGN.items():
            rows, cols, blob = _gaussian_window(size, a.center_x + sign * (a.mediastinum + 0.03), a.level_y(0.42),
                                                0.03, 0.05)
            density[rows, cols] += 0.12 * blob * self.lungs[side][rows, cols]
            if a.breast > 0:
                rows, cols, blob = _gaussian_window(size, a.side_x(side, 0.7), a.level_y(1.0), 0.11, 0.08)
                density[rows, cols] += a.breast * blob
        if self.pneumothorax_mask is not None:
            density += PLEURAL_LINE * self.pleura - PNEUMOTHORAX_LUCENCY * self.gap
        return density


def _draw_opacity(canvas: _Canvas, density: np.ndarray, lesion: Opacity, rng: np.random.Generator) -> None:
    a, size = canvas.anatomy, canvas.size
    rx, ry = lesion.radius, lesion.radius * lesion.aspect
    sign, span = SIDE_SIGN[lesion.side], a.base_y - a.apex_y
    cx, cy = a.side_x(lesion.side, lesion.u), a.level_y(lesion.t)
    lobes = [(cx + sign * du * a.lung_width, cy + dt * span, scale) for du, dt, scale in lesion.lobes]
    reach = 3.0 / lesion.sharpness ** 0.5
    rows, cols = _window(size, min(lx - reach * rx * s for lx, _, s in lobes),
                         min(ly - reach * ry * s for _, ly, s in lobes),
                         max(lx + reach * rx * s for lx, _, s in lobes),
                         max(ly + reach * ry * s for _, ly, s in lobes))
    x, y = _axes(size)
    total = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
    for lx, ly, scale in lobes:
        r2 = np.square((x[:, cols] - lx) / (rx * scale)) + np.square((y[rows] - ly) / (ry * scale))
        total += np.exp(-(r2 ** lesion.sharpness) if lesion.sharpness != 1.0 else -r2)
    visible = np.minimum(total, 1.0) * canvas.lungs[lesion.side][rows, cols]
    density[rows, cols] += lesion.amplitude * visible
    if lesion.boxed:
        box = _box_of(visible, rows, cols, 0.3 * float(visible.max()))
        if box is not None:
            canvas.boxes.append(box)


def _draw_consolidation(canvas: _Canvas, density: np.ndarray, lesion: Consolidation, rng: np.random.Generator) -> None:
    a, size = canvas.anatomy, canvas.size
    x, y = _axes(size)
    span = a.base_y - a.apex_y
    u = SIDE_SIGN[lesion.side] * (x - a.center_x) / a.lung_width - a.mediastinum / a.lung_width
    fissure = a.level_y(lesion.fissure_t) + lesion.fissure_slope * span * u
    signed = (y - fissure) if lesion.lower else (fissure - y)
    lobe = _ramp(signed, size) * np.clip(1.2 - np.abs(signed) / (0.9 * span), 0.0, 1.0)
    if lesion.bronchograms:
        lobe = lobe * (1.0 - 0.35 * _curves(_smooth_noise(rng, size, max(size // 10, 6)), 0.12))
    density += lesion.amplitude * lobe * canvas.aerated[lesion.side]


def _draw_plate(canvas: _Canvas, density: np.ndarray, lesion: PlateAtelectasis, rng: np.random.Generator) -> None:
    a, size = canvas.anatomy, canvas.size
    x, y = _axes(size)
    cx, cy = a.side_x(lesion.side, lesion.u), a.level_y(lesion.t)
    half = lesion.length / 2 + lesion.thickness
    rows, cols = _window(size, cx - half, cy - half, cx + half, cy + half)
    dx, dy = x[:, cols] - cx, y[rows] - cy
    cos, sin = np.cos(lesion.angle), np.sin(lesion.angle)
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    taper = np.clip(1.0 - np.square(along / (lesion.length / 2)), 0, 1)
    band = _ramp(lesion.thickness / 2 - np.abs(across), size) * taper
    density[rows, cols] += lesion.amplitude * band * canvas.lungs[lesion.side][rows, cols]


def _draw_effusion(canvas: _Canvas, density: np.ndarray, lesion: Effusion, rng: np.random.Generator) -> None:
    a, size = canvas.anatomy, canvas.size
    x, y = _axes(size)
    u = np.clip(SIDE_SIGN[lesion.side] * (x - a.center_x) / a.lung_width - a.mediastinum / a.lung_width, 0.0, 1.0)
    surface = a.base_y - lesion.height * (1.0 - 0.6 * np.sqrt(1.0 - u))
    fluid = np.clip((y - surface) / 0.02 + 0.5, 0.0, 1.0)
    density += (lesion.amplitude * LUNG_AIR) * fluid * canvas.lungs[lesion.side]


def _draw_foreign_object(canvas: _Canvas, density: np.ndarray, lesion: ForeignObject, rng: np.random.Generator) -> None:
    size = canvas.size
    x, y = _axes(size)
    px = [p * size for p in lesion.points]
    xs, ys = px[0::2], px[1::2]
    rows, cols = _window(size, min(xs) / size, min(ys) / size, max(xs) / size, max(ys) / size)
    gx, gy = x[:, cols] * size, y[rows] * size
    if lesion.kind == RECTANGLE:
        inside = (gx >= xs[0]) & (gx <= xs[1]) & (gy >= ys[0]) & (gy <= ys[1])
    elif lesion.kind == ELLIPSE:
        cx, cy, rx, ry = (xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2, (xs[1] - xs[0]) / 2, (ys[1] - ys[0]) / 2
        inside = np.square((gx - cx) / rx) + np.square((gy - cy) / ry) <= 1.0
    else:
        inside = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
        for i in range(len(xs)):
            x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
            if y0 == y1:
                continue
            crosses = ((y0 > gy) != (y1 > gy)) & (gx < (x1 - x0) * (gy - y0) / (y1 - y0) + x0)
            inside ^= crosses
    density[rows, cols] += lesion.amplitude * inside
    canvas.objects.append((lesion.kind, [round(p, 1) for p in px]))


_DRAWERS = {
    Opacity: _draw_opacity,
    Consolidation: _draw_consolidation,
    PlateAtelectasis: _draw_plate,
    Effusion: _draw_effusion,
    ForeignObject: _draw_foreign_object,
}


def expose(density: np.ndarray, anatomy: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Grey values of an attenuation map (formula in the module docstring), as (H, W) uint8."""
    size = density.shape[0]
    _, y = _axes(size)
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
    canvas = _Canvas(anatomy, size, lesions)
    density = canvas.base(rng)
    lesion_rng = np.random.default_rng([anatomy.texture_seed, 1])
    for lesion in lesions:
        if not isinstance(lesion, Pneumothorax):
            _DRAWERS[type(lesion)](canvas, density, lesion, lesion_rng)
    image = expose(density, anatomy, np.random.default_rng([anatomy.texture_seed, 2]))
    return Rendering(image=image, boxes=canvas.boxes, pneumothorax_mask=canvas.pneumothorax_mask,
                     foreign_objects=canvas.objects)


def render_lateral(anatomy: Anatomy, lesions: Sequence[Lesion], size: int = 256) -> Rendering:
    """Render a left-lateral radiograph (patient facing the image left) of the same chest.

    The trunk is an ellipse; the lungs one dark ovoid from the sternum (x = 0.27) to the spine (x = 0.74);
    the heart sits antero-inferiorly (its width scales with ``ctr``); the spine is a column of vertebral
    bodies posteriorly. Lesions keep their level t; u maps to depth (lateral opacities project posteriorly);
    effusions fill the posterior costophrenic sulcus; pneumothoraces are not visible. Nothing is recorded.
    """
    rng = np.random.default_rng(anatomy.texture_seed)
    x, y = _axes(size)
    a = anatomy
    span = a.base_y - a.apex_y
    trunk = _ramp(1.0 - np.square((x - 0.5) / 0.36) - np.square((y - 0.62) / 0.62), size)
    body = trunk * (SOFT_TISSUE * (0.9 + 0.2 * y))
    front, back = 0.27, 0.74
    dome = a.base_y - 0.06 + 0.25 * np.square(x - 0.62)
    t = np.clip((y - a.apex_y) / span, 0.0, 1.0)
    round_top = np.sqrt(1.0 - np.square(1.0 - np.minimum(t / 0.4, 1.0)))
    centre = (front + back) / 2
    half = (back - front) / 2 * round_top
    lung = _ramp(half - np.abs(x - centre), size) * _ramp(dome - y, size) * _ramp(y - a.apex_y, size)
    heart_r = 0.55 * a.ctr * (a.mediastinum + a.lung_width)
    heart = _ramp(0.5 * (1.0 - np.square((x - front - heart_r * 0.9) / heart_r)
                         - np.square((y - a.heart_y - 0.02) / (heart_r * 0.95))) * heart_r, size)
    lung = lung * (1.0 - heart)
    markings = _curves(_smooth_noise(rng, size, max(size // 7, 8)), 0.22)
    density = body - LUNG_AIR * lung + 0.035 * markings * lung + 0.03 * heart
    spine = _ramp(0.04 - np.abs(x - 0.8), size) * (0.08 + 0.04 * np.cos(2 * np.pi * y / 0.045))
    sternum = 0.08 * _ramp(0.008 - np.abs(x - front + 0.012), size) * _ramp(a.base_y - y, size)
    density += (spine + sternum) * trunk
    for lesion in lesions:
        _draw_lateral_lesion(density, lesion, lung, a, size, rng)
    image = expose(density, a, np.random.default_rng([a.texture_seed, 3]))
    return Rendering(image=image)


def _draw_lateral_lesion(density, lesion: Lesion, lung, a: Anatomy, size: int, rng: np.random.Generator) -> None:
    """Project one lesion onto the lateral view (see :func:`render_lateral`)."""
    x, y = _axes(size)
    if isinstance(lesion, Opacity):
        rows, cols, blob = _gaussian_window(size, 0.45 + 0.25 * lesion.u, a.level_y(lesion.t), lesion.radius * 1.2,
                                            lesion.radius * lesion.aspect, lesion.sharpness)
        density[rows, cols] += lesion.amplitude * blob * lung[rows, cols]
    elif isinstance(lesion, Consolidation):
        level = a.level_y(lesion.fissure_t)
        signed = (y - level) if lesion.lower else (level - y)
        density += lesion.amplitude * _ramp(signed, size) * lung * _ramp(x - 0.35, size)
    elif isinstance(lesion, PlateAtelectasis):
        level = a.level_y(lesion.t)
        rows, cols = _window(size, 0.4, level - lesion.thickness, 0.7, level + lesion.thickness)
        band = _ramp(lesion.thickness / 2 - np.abs(y[rows] - level), size)
        density[rows, cols] += lesion.amplitude * band * lung[rows, cols]
    elif isinstance(lesion, Effusion):
        surface = a.base_y - lesion.height * (0.4 + 0.6 * np.clip((x - 0.45) / 0.3, 0, 1))
        density += lesion.amplitude * LUNG_AIR * np.clip((y - surface) / 0.02 + 0.5, 0, 1) * lung
    elif isinstance(lesion, ForeignObject):
        xs, ys = lesion.points[0::2], lesion.points[1::2]
        cx, cy = 0.3 + 0.4 * (sum(xs) / len(xs)), sum(ys) / len(ys)
        half = max(max(xs) - min(xs), 0.01) / 2
        rows, cols = _window(size, cx - half, cy - half, cx + half, cy + half)
        density[rows, cols] += lesion.amplitude
