"""Confidence calibration: a monotone map from a raw confidence to the chance a character is right.

Platt scaling: a logistic regression on the logit of the raw confidence, p' = σ(a·logit(p) + b),
with a > 0.
Two parameters fit from a few hundred characters without the overfitting of isotonic regression
(whose steps need thousands), and a monotone map leaves the order of characters, and so AUROC,
unchanged. A model folder may carry its fit as `calibration.json`; the transcriber applies it.
Honest figures need characters the fit did not see: `cross_fitted` gives each group (an
utterance) confidences from a fit on the other groups.

After a language-model beam search the raw measure ranks errors poorly: the LM picks among
homophones without changing the frames' posteriors. So a calibration may also carry a `beam`
map (`BeamCalibration`): scikit-learn's logistic regression over what the search saw of each
character (`engine.lm.EVIDENCE`: the measure, the chosen character's own posterior, the beams'
agreement, the LM's probability, its neighbours'). That map orders characters anew, so it
changes AUROC as well as ECE; greedy decoding keeps the Platt map.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text

__all__ = [
    "CALIBRATION_FILE",
    "BeamCalibration",
    "Calibration",
    "cross_fitted",
    "cross_fitted_beam",
    "fit_beam",
    "fit_platt",
    "load_calibration",
    "read_calibration",
]

log = logging.getLogger("tingxie.calibration")

CALIBRATION_FILE = "calibration.json"
_EPS = 1e-6  # confidences are clipped to [ε, 1 − ε] before the logit
_PRIOR = 0.01  # weight of fit_platt's identity-map pseudo-characters, per character
# A map must rise with the raw confidence: one that falls would show the surest characters as
# the most doubtful and send review to them first. A fit below this slope is held at it.
_MIN_SLOPE = 1e-3


@dataclass(frozen=True, slots=True)
class BeamCalibration:
    """A logistic map from a beam search's evidence on a character (columns `features`, as
    engine.lm.EVIDENCE names them) to the chance the character is right."""

    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    characters: int

    def __post_init__(self) -> None:
        if len(self.features) != len(self.coef):
            raise ValueError(
                f"beam calibration: {len(self.coef)} coefficients for {len(self.features)} "
                "features; refit it (tingxie-cli evaluate --calibrate)"
            )
        if not all(isinstance(f, str) for f in self.features):
            raise ValueError(f"beam.features is {list(self.features)!r}, not a list of names")
        for i, c in enumerate(self.coef):
            _finite(c, f"beam.coef[{i}]")
        _finite(self.intercept, "beam.intercept")
        _count(self.characters, "beam.characters")

    def apply(self, evidence: np.ndarray) -> np.ndarray:
        x = np.asarray(evidence, dtype=np.float64).reshape(-1, len(self.coef))
        return expit(x @ np.asarray(self.coef) + self.intercept)


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted Platt map for one confidence measure, and what it was fitted on; with `beam`,
    also the map that beam search's characters take instead."""

    measure: str
    a: float
    b: float
    characters: int
    method: str = "platt"
    beam: BeamCalibration | None = None

    def __post_init__(self) -> None:
        """A map whose parameters are not finite numbers would show NaN (or fail on first use):
        refused here, so a damaged file is refused when it is read."""
        if _finite(self.a, "a") < _MIN_SLOPE:
            raise ValueError(
                f"a is {self.a!r}: a map that does not rise with the confidence would rank the "
                "surest characters as the most doubtful; refit it (tingxie-cli evaluate "
                "--calibrate)"
            )
        _finite(self.b, "b")
        _count(self.characters, "characters")
        if not isinstance(self.measure, str) or not isinstance(self.method, str):
            raise ValueError(f"measure {self.measure!r} and method {self.method!r}: not names")
        if self.beam is not None and not isinstance(self.beam, BeamCalibration):
            raise ValueError(f"beam is {self.beam!r}, not a beam map")

    def apply(self, confidence: float | np.ndarray) -> float | np.ndarray:
        z = self.a * _logit(np.asarray(confidence, dtype=np.float64)) + self.b
        out = expit(z)
        return float(out) if np.ndim(out) == 0 else out

    def shown(self, confidences: np.ndarray, evidence: np.ndarray | None = None) -> np.ndarray:
        """What characters show: the beam map of their `evidence` (given after a beam search)
        when there is one, else the Platt map of their raw `confidences`."""
        if evidence is not None and self.beam is not None:
            return self.beam.apply(evidence)
        return np.asarray(self.apply(np.asarray(confidences, dtype=np.float64)))

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        """Read back what `write` wrote (TypeError or ValueError, naming what is wrong, when it
        is not that: another JSON value than an object, a parameter that is not a finite
        number)."""
        if not isinstance(data, dict):
            raise TypeError(f"it holds {_json_kind(data)}, not an object")
        beam = data.get("beam")
        if beam is not None:
            if not isinstance(beam, dict):
                raise TypeError(f"beam holds {_json_kind(beam)}, not an object")
            features, coef = beam["features"], beam["coef"]
            for name, value in (("beam.features", features), ("beam.coef", coef)):
                if not isinstance(value, list):
                    raise TypeError(f"{name} holds {_json_kind(value)}, not a list")
            beam = BeamCalibration(
                features=tuple(features),
                coef=tuple(coef),
                intercept=beam["intercept"],
                characters=beam["characters"],
            )
        return cls(**{**data, "beam": beam})


def _json_kind(value: object) -> str:
    """How a JSON value reads in a message: "a list", "null"."""
    if value is None:
        return "null"
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    return kinds.get(type(value), "a number")


def _finite(value: object, name: str) -> float:
    """`value` as a float; ValueError naming `name` when it is not a finite number (NaN,
    ±Infinity, a string, null)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} is {value!r}, not a finite number")
    return float(value)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} is {value!r}, not a count")
    return int(value)


def expit(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^−z), without overflow for large |z|."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_platt(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    measure: str,
) -> Calibration:
    """scikit-learn's logistic regression of right/wrong on logit(confidence), unpenalized (C=∞),
    with a prior as pseudo-characters: each character twice more, right with weight
    `_PRIOR`·p and wrong with `_PRIOR`·(1 − p), characters the identity map describes exactly.
    It pulls a small or one-sided sample (a short tuning set the model gets all right) towards
    the raw confidences instead of to a constant, and weighs little on a real fit."""
    from sklearn.linear_model import LogisticRegression

    p = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if p.shape != y.shape or len(p) == 0:
        raise ValueError(f"fit_platt: {p.shape} confidences and {y.shape} labels; need one each")
    x = _logit(p)
    xs = np.concatenate([x, x, x])[:, None]
    ys = np.concatenate([y, np.ones_like(y), np.zeros_like(y)])
    weights = np.concatenate([np.ones_like(p), _PRIOR * p, _PRIOR * (1 - p)])
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(xs, ys, sample_weight=weights)
    a, b = float(fit.coef_[0][0]), float(fit.intercept_[0])
    if a < _MIN_SLOPE:  # confidences that do not rise with correctness here: keep their order
        a = _MIN_SLOPE
        b = _intercept(a * xs[:, 0], ys, weights)
    return Calibration(measure=measure, a=a, b=b, characters=len(p))


def _intercept(z: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """The b of the logistic fit σ(z + b) with z fixed: the root of Σ w·(σ(z + b) − y), which
    rises with b, found by bisection (both classes carry weight, so it lies in the bracket)."""
    lo, hi = -60.0, 60.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if float(np.sum(weights * (expit(z + mid) - y))) > 0:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def fit_beam(
    evidence: np.ndarray, correct: Sequence[bool] | np.ndarray, features: Sequence[str]
) -> BeamCalibration:
    """scikit-learn's logistic regression of right/wrong on each character's beam evidence,
    lightly regularized (C=10: a few hundred characters already fix seven coefficients, and
    a strong penalty would flatten the map, leaving it overconfident where it is unsure)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(evidence, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    if x.ndim != 2 or x.shape != (len(y), len(features)) or len(y) == 0:
        raise ValueError(
            f"fit_beam: evidence {x.shape} for {len(y)} labels and {len(features)} features"
        )
    fit = LogisticRegression(C=10.0, max_iter=1000).fit(x, y)
    return BeamCalibration(
        features=tuple(features),
        coef=tuple(float(c) for c in fit.coef_[0]),
        intercept=float(fit.intercept_[0]),
        characters=len(y),
    )


def cross_fitted_beam(
    evidence: np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    features: Sequence[str],
    folds: int = 2,
) -> np.ndarray:
    """As `cross_fitted`, for the beam map (whose fit needs right and wrong characters in
    every fold's training part)."""
    x = np.asarray(evidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    fold = np.asarray(groups) % folds
    for k in range(folds):
        if ok[fold != k].all() or not ok[fold != k].any():
            raise ValueError(f"cross_fitted_beam: fold {k} leaves nothing to fit; use more groups")
    return _cross_fit(x, ok, fold, folds, lambda xs, ys: fit_beam(xs, ys, features))


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
    return _cross_fit(c, ok, fold, folds, lambda xs, ys: fit_platt(xs, ys, measure))


def _cross_fit(x: np.ndarray, ok: np.ndarray, fold: np.ndarray, folds: int, fit) -> np.ndarray:
    """Each item mapped by `fit(x, ok)` of the items outside its fold."""
    out = np.empty(len(ok))
    for k in range(folds):
        held = fold == k
        if held.all():
            raise ValueError(f"cross-fitting: every group is in fold {k}; use more groups")
        out[held] = fit(x[~held], ok[~held]).apply(x[held])
    return out


def load_calibration(folder: str | Path) -> Calibration | None:
    """The folder's Platt calibration, whichever measure it maps; None when absent, of another
    method or unreadable (logged: confidences then stay raw). A beam map over other evidence
    than this version's beam search gives (engine.lm.EVIDENCE) is dropped, logged: the Platt
    map still applies, to beam-searched characters too."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        calibration = Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        log.warning("%s: not a calibration Tingxie can read (%s); confidences stay raw", path, e)
        return None
    if calibration.method != "platt":
        return None
    if calibration.beam is not None:
        from .lm import EVIDENCE

        if calibration.beam.features != EVIDENCE:
            log.warning(
                "%s: its beam map reads %s, not what this version's beam search gives (%s); "
                "beam-searched characters take its Platt map instead: refit it "
                "(tingxie-cli evaluate --calibrate)",
                path,
                ", ".join(calibration.beam.features) or "nothing",
                ", ".join(EVIDENCE),
            )
            calibration = replace(calibration, beam=None)
    return calibration


def read_calibration(folder: str | Path, measure: str) -> Calibration | None:
    """The folder's calibration for `measure`, or None (absent, another measure or method, or
    unreadable: logged, since confidences then stay raw)."""
    calibration = load_calibration(folder)
    if calibration is None:
        return None
    if calibration.measure != measure:
        log.warning(
            "%s: calibrates %s, not %s; confidences stay raw",
            Path(folder) / CALIBRATION_FILE,
            calibration.measure,
            measure,
        )
        return None
    return calibration
