"""Dense warps from sparse landmark displacements (thin-plate splines).

A :class:`ThinPlateSpline` interpolates a 2-D displacement known at control points
(the 68 landmarks plus fixed anchors); :func:`dense_field` evaluates it on a coarse grid
and upsamples bilinearly, which is exact enough for the smooth fields used here and ~50x
cheaper than evaluating every pixel. Images are then resampled with ``cv2.remap``.

Coordinates are ``(x, y)`` pixels, origin at the centre of the top-left pixel. Maps
follow OpenCV's backward convention: output pixel ``p`` takes the input at ``map(p)``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

#: Coarse-grid spacing, pixels, for :func:`dense_field`.
GRID_STEP = 8


def _kernel(r2: np.ndarray) -> np.ndarray:
    """TPS radial basis ``r^2 log r``, written with ``r^2`` (0 at r = 0)."""
    out = np.zeros_like(r2)
    nz = r2 > 0
    out[nz] = 0.5 * r2[nz] * np.log(r2[nz])
    return out


@dataclass(frozen=True)
class ThinPlateSpline:
    """A fitted 2-D -> 2-D thin-plate spline.

    Attributes
    ----------
    centres : ndarray of shape (n, 2), float64
        Control points, in units of ``scale`` pixels.
    weights : ndarray of shape (n, 2), float64
        Radial-basis coefficients.
    affine : ndarray of shape (3, 2), float64
        Coefficients of ``1, x, y``.
    scale : float
        Pixels per unit (coordinates are divided by it for conditioning).
    """

    centres: np.ndarray
    weights: np.ndarray
    affine: np.ndarray
    scale: float

    @classmethod
    def fit(cls, points: np.ndarray, values: np.ndarray, *, scale: float = 100.0,
            smoothing: float = 1e-6) -> ThinPlateSpline:
        """Interpolate ``values`` (shape (n, 2)) given at ``points`` (shape (n, 2), pixels).

        ``smoothing`` (in units of ``scale``) regularises nearly coincident points
        (e.g. the inner and outer lip corners); values are in the caller's units.
        """
        p = np.asarray(points, np.float64) / scale
        v = np.asarray(values, np.float64)
        n = len(p)
        if p.shape != (n, 2) or v.shape != (n, 2):
            raise ValueError(f"points and values must both be (n, 2); got {p.shape}, {v.shape}")
        k = _kernel(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
        a = np.hstack([np.ones((n, 1)), p])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = k + smoothing * np.eye(n)
        system[:n, n:] = a
        system[n:, :n] = a.T
        rhs = np.vstack([v, np.zeros((3, 2))])
        sol = np.linalg.solve(system, rhs)
        return cls(centres=p, weights=sol[:n], affine=sol[n:], scale=float(scale))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Values at ``points`` (shape (m, 2), pixels) -> shape (m, 2), float64."""
        q = np.asarray(points, np.float64) / self.scale
        r2 = ((q[:, None, :] - self.centres[None, :, :]) ** 2).sum(-1)
        return _kernel(r2) @ self.weights + np.hstack([np.ones((len(q), 1)), q]) @ self.affine


def border_anchors(width: int, height: int, per_side: int = 6, margin: float = 0.0) -> np.ndarray:
    """Points evenly spaced on a rectangle ``margin`` pixels outside the image, shape (4k, 2).

    Used as zero-displacement controls so a warp fades out away from the face.
    """
    x0, y0 = -margin, -margin
    x1, y1 = width - 1 + margin, height - 1 + margin
    t = np.linspace(0.0, 1.0, per_side, endpoint=False)
    top = np.stack([x0 + t * (x1 - x0), np.full_like(t, y0)], 1)
    right = np.stack([np.full_like(t, x1), y0 + t * (y1 - y0)], 1)
    bottom = np.stack([x1 - t * (x1 - x0), np.full_like(t, y1)], 1)
    left = np.stack([np.full_like(t, x0), y1 - t * (y1 - y0)], 1)
    return np.vstack([top, right, bottom, left])


def pixel_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xs, ys)``, each float32 of shape (height, width): every pixel's coordinates."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def dense_field(fn: Callable[[np.ndarray], np.ndarray], width: int, height: int,
                step: int = GRID_STEP) -> np.ndarray:
    """Evaluate a smooth 2-D field on a coarse grid and upsample it to every pixel.

    Parameters
    ----------
    fn : callable
        ``points (m, 2) -> values (m, 2)``, points in output pixels ``(x, y)``.
    width, height : int
        Output size.
    step : int
        Grid spacing, pixels.

    Returns
    -------
    ndarray of shape (height, width, 2), float32
    """
    gw, gh = -(-width // step), -(-height // step)
    # One extra node on every side, nodes at the centres of step x step blocks: then
    # cv2.resize's pixel-centre convention puts node j exactly at its pixel and every
    # output pixel lies between nodes (no clamped extrapolation at the borders).
    xs = (np.arange(gw + 2) - 1) * step + (step - 1) / 2.0
    ys = (np.arange(gh + 2) - 1) * step + (step - 1) / 2.0
    gx, gy = np.meshgrid(xs, ys)
    values = fn(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gh + 2, gw + 2, 2)
    up = cv2.resize(values.astype(np.float32), ((gw + 2) * step, (gh + 2) * step),
                    interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(up[step:step + height, step:step + width])


def remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, *,
          border: int = cv2.BORDER_REPLICATE, value: float = 0.0) -> np.ndarray:
    """Bicubic backward resampling: ``out[y, x] = image[map_y[y, x], map_x[y, x]]``."""
    return cv2.remap(image, map_x.astype(np.float32, copy=False),
                     map_y.astype(np.float32, copy=False), cv2.INTER_CUBIC,
                     borderMode=border, borderValue=value)


def landmark_warp(image: np.ndarray, src_points: np.ndarray, dst_points: np.ndarray,
                  anchors: np.ndarray) -> np.ndarray:
    """Warp ``image`` so that ``src_points`` land on ``dst_points`` (same size out).

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C)
    src_points, dst_points : ndarray of shape (n, 2)
        Corresponding points in the input and the output, ``(x, y)`` pixels.
    anchors : ndarray of shape (k, 2)
        Output points that stay where they are.

    Returns
    -------
    ndarray, same shape and dtype as ``image``
    """
    h, w = image.shape[:2]
    ctrl = np.vstack([dst_points, anchors])
    disp = np.vstack([src_points - dst_points, np.zeros_like(anchors)])
    tps = ThinPlateSpline.fit(ctrl, disp, scale=max(w, h) / 4.0)
    field = dense_field(tps, w, h)
    xs, ys = pixel_grid(w, h)
    return remap(image, xs + field[..., 0], ys + field[..., 1])
