"""The opacity primitive several findings draw with (airspace opacity, ground glass, perihilar haze, nodules)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvlp_bench_plugins.synthetic.phantom import SIDE_SIGN, Anatomy, FrontalCanvas, Lesion
from medvlp_bench_plugins.synthetic.raster import axes, box_of, gaussian_window, window


@dataclass(frozen=True)
class Opacity(Lesion):
    """Fluffy opacity: a sum of Gaussian lobes added to the lung's attenuation.

    ``lobes`` are (du, dt, scale) offsets of each lobe from (u, t), in lung-relative units, and its radius
    factor; lobe k adds ``amplitude * exp(-((x-xk)/(rx*sk))^2 - ((y-yk)/(ry*sk))^2)`` with ``rx = radius``,
    ``ry = radius * aspect``; the sum is clipped at ``amplitude`` and masked by the lung. With ``recorded_as`` the
    rendering records its bounding box (pixels x, y, w, h where the opacity exceeds 30 % of its peak) under that
    finding name. ``sharpness`` > 1 steepens the profile (``exp(-r^(2*sharpness))``: nodules).
    On a lateral view it is one Gaussian at depth ``0.45 + 0.25 u``, 1.2 times wider.
    """

    side: str
    u: float
    t: float
    radius: float
    aspect: float
    amplitude: float
    lobes: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 1.0),)
    recorded_as: str = ""
    sharpness: float = 1.0

    def draw(self, canvas: FrontalCanvas, density: np.ndarray, rng: np.random.Generator) -> None:
        a, size = canvas.anatomy, canvas.size
        rx, ry = self.radius, self.radius * self.aspect
        sign, span = SIDE_SIGN[self.side], a.base_y - a.apex_y
        cx, cy = a.side_x(self.side, self.u), a.level_y(self.t)
        centres = [(cx + sign * du * a.lung_width, cy + dt * span, scale) for du, dt, scale in self.lobes]
        reach = 3.0 / self.sharpness ** 0.5
        rows, cols = window(size, min(lx - reach * rx * s for lx, _, s in centres),
                            min(ly - reach * ry * s for _, ly, s in centres),
                            max(lx + reach * rx * s for lx, _, s in centres),
                            max(ly + reach * ry * s for _, ly, s in centres))
        x, y = axes(size)
        total = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.float32)
        for lx, ly, scale in centres:
            r2 = np.square((x[:, cols] - lx) / (rx * scale)) + np.square((y[rows] - ly) / (ry * scale))
            total += np.exp(-(r2 ** self.sharpness) if self.sharpness != 1.0 else -r2)
        visible = np.minimum(total, 1.0) * canvas.lungs[self.side][rows, cols]
        density[rows, cols] += self.amplitude * visible
        if self.recorded_as:
            box = box_of(visible, rows, cols, 0.3 * float(visible.max()))
            if box is not None:
                canvas.record(self.recorded_as, box)

    def draw_lateral(self, density: np.ndarray, lung: np.ndarray, anatomy: Anatomy, size: int) -> None:
        rows, cols, blob = gaussian_window(size, 0.45 + 0.25 * self.u, anatomy.level_y(self.t), self.radius * 1.2,
                                           self.radius * self.aspect, self.sharpness)
        density[rows, cols] += self.amplitude * blob * lung[rows, cols]
