"""Confidence calibration: a monotone map from a raw confidence to the chance a character is right.

Platt scaling: a logistic regression on the logit of the raw confidence, p' = σ(a·logit(p) + b).
Two parameters fit from a few hundred characters without the overfitting of isotonic regression
(whose steps need thousands), and a monotone map leaves the order of characters, and so AUROC,
unchanged. A model folder may carry its fit as `calibration.json`; the transcriber applies it.
Honest figures need characters the fit did not see: `cross_fitted` gives each group (an
utterance) confidences from a fit on the other groups.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text

__all__ = ["CALIBRATION_FILE", "Calibration", "cross_fitted", "fit_platt", "read_calibration"]

log = logging.getLogger("tingxie.calibration")

CALIBRATION_FILE = "calibration.json"
_EPS = 1e-6  # confidences are clipped to [ε, 1 − ε] before the logit
_RIDGE = 1e-3  # a little L2 on (a − 1, b): keeps the fit finite when one class is tiny


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted Platt map for one confidence measure, and what it was fitted on."""

    measure: str
    a: float
    b: float
    characters: int
    method: str = "platt"

    def apply(self, confidence: float | np.ndarray) -> float | np.ndarray:
        z = self.a * _logit(np.asarray(confidence, dtype=np.float64)) + self.b
        out = 1.0 / (1.0 + np.exp(-z))
        return float(out) if np.ndim(out) == 0 else out

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")
        return path


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_platt(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    measure: str,
) -> Calibration:
    """Fit a and b by Newton's method on the logistic loss (convex: a few steps converge)."""
    x = _logit(np.asarray(confidences, dtype=np.float64))
    y = np.asarray(correct, dtype=np.float64)
    if x.shape != y.shape or len(x) == 0:
        raise ValueError(f"fit_platt: {x.shape} confidences and {y.shape} labels; need one each")
    design = np.stack([x, np.ones_like(x)], axis=1)
    w = np.array([1.0, 0.0])  # the identity map
    prior = w.copy()
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + _RIDGE * len(x) * (w - prior)
        hess = (design.T * (p * (1 - p))) @ design + _RIDGE * len(x) * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return Calibration(measure=measure, a=float(w[0]), b=float(w[1]), characters=len(x))


def cross_fitted(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    measure: str,
    folds: int = 2,
) -> np.ndarray:
    """Calibrated confidences where each item's map was fitted without its group's fold
    (group g is in fold g % folds): the held-out view of what calibration achieves."""
    c = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    fold = np.asarray(groups) % folds
    out = np.empty_like(c)
    for k in range(folds):
        held = fold == k
        if held.all():
            raise ValueError(f"cross_fitted: every group is in fold {k}; use more groups")
        out[held] = fit_platt(c[~held], ok[~held], measure).apply(c[held])
    return out


def read_calibration(folder: str | Path, measure: str) -> Calibration | None:
    """The folder's calibration for `measure`, or None (absent, another measure or method, or
    unreadable: logged, since confidences then stay raw)."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        calibration = Calibration(**data)
    except (OSError, ValueError, TypeError) as e:
        log.warning("%s: not a calibration Tingxie can read (%s); confidences stay raw", path, e)
        return None
    if calibration.method != "platt" or calibration.measure != measure:
        log.warning(
            "%s: calibrates %s by %s, not %s; confidences stay raw",
            path,
            calibration.measure,
            calibration.method,
            measure,
        )
        return None
    return calibration
