"""How close an approximate map is to the exact one: the structural similarity (SSIM, Wang
et al. 2004, as scikit-image computes it by default: uniform 7-wide windows, the reference
map's value range, K1 = 0.01, K2 = 0.03, the sample covariance) and the Spearman rank
correlation. NumPy only, over maps of any number of axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spearman", "ssim"]


def _window_means(values: np.ndarray, width: tuple[int, ...]) -> np.ndarray:
    """The mean of every full window of ``width`` (one per axis) of ``values``, by summed
    areas: an array of the "valid" window positions."""
    total = values.astype(np.float64)
    for axis, w in enumerate(width):
        summed = np.cumsum(total, axis=axis)
        zero = np.zeros_like(np.take(summed, [0], axis=axis))
        summed = np.concatenate([zero, summed], axis=axis)
        length = summed.shape[axis]
        total = np.take(summed, range(w, length), axis=axis) - np.take(
            summed, range(0, length - w), axis=axis
        )
    return total / float(np.prod(width))


def ssim(approximate: np.ndarray, exact: np.ndarray, width: int = 7) -> float:
    """The mean SSIM of ``approximate`` against ``exact`` (the same shape, any axes; an
    axis shorter than ``width`` is windowed over its length). 1.0 for equal maps; a constant
    exact map has the data range 1.

    >>> ssim(np.ones((8, 8)), np.ones((8, 8)))
    1.0
    """
    a = np.asarray(approximate, dtype=np.float64)
    b = np.asarray(exact, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"approximate: shape {a.shape} is invalid, expected {b.shape}")
    widths = tuple(min(width, length) for length in b.shape)
    count = float(np.prod(widths))
    correction = count / (count - 1) if count > 1 else 1.0  # the sample covariance
    span = float(b.max() - b.min()) if b.size else 0.0
    span = span if span > 0 else 1.0
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    ma, mb = _window_means(a, widths), _window_means(b, widths)
    va = (_window_means(a * a, widths) - ma * ma) * correction
    vb = (_window_means(b * b, widths) - mb * mb) * correction
    cov = (_window_means(a * b, widths) - ma * mb) * correction
    index = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(index.mean())


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, ties given their mean rank."""
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(flat.size, dtype=np.float64)
    ranks[order] = np.arange(flat.size, dtype=np.float64)
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if counts.max(initial=1) > 1:  # average the ranks of equal values
        sums = np.bincount(inverse, weights=ranks)
        ranks = sums[inverse] / counts[inverse]
    return ranks


def spearman(approximate: np.ndarray, exact: np.ndarray) -> float:
    """The Spearman rank correlation of two maps' values (1.0: the same order; 0.0 when
    either map is constant).

    >>> spearman(np.arange(5.0), np.arange(5.0) ** 2)
    1.0
    """
    a, b = _ranks(np.asarray(approximate)), _ranks(np.asarray(exact))
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / scale) if scale > 0 else 0.0
