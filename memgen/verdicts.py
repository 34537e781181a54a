"""One rule for every verdict the book states.

A claim's verdict is exactly one of ``Reproduced``, ``Not shown`` or ``Contradicted``, computed
from numbers with an explicit margin:

* an accuracy counts as *above chance* only when its binomial confidence interval (Wilson score,
  95%, on the number of pairs evaluated) lies entirely above the chance level 1/P, and as *at
  chance* when the interval contains it;
* a difference between two quantities counts only when it exceeds the spread over seeds (the
  largest half-range of either side, or ``min_margin`` when there is a single seed, in which
  case the verdict also says that the spread is unknown).

The verdict carries the numbers it was judged on, so a reader (and a test) can check it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REPRODUCED, NOT_SHOWN, CONTRADICTED = "Reproduced", "Not shown", "Contradicted"
VERDICTS = (REPRODUCED, NOT_SHOWN, CONTRADICTED)

#: z of the two-sided 95% normal quantile used by the Wilson interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Verdict:
    """A judged claim.

    Parameters
    ----------
    claim : str
        The paper's statement, in one sentence.
    verdict : {"Reproduced", "Not shown", "Contradicted"}
        The outcome.
    evidence : str
        The numbers the verdict was judged on, in words.
    numbers : dict, default={}
        The same numbers, machine-readable (key number first).
    settings : str, default=""
        What they were measured under (profile, P, steps, seeds, source).
    """

    claim: str
    verdict: str
    evidence: str
    numbers: dict[str, Any] = field(default_factory=dict)
    settings: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r} is not allowed; choose one of {', '.join(VERDICTS)}")

    @property
    def reproduced(self) -> bool:
        """True when the verdict is ``Reproduced``."""
        return self.verdict == REPRODUCED

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a plain dict (JSON-ready)."""
        return {"claim": self.claim, "verdict": self.verdict, "evidence": self.evidence,
                "numbers": dict(self.numbers), "settings": self.settings}


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    successes : float
        Number of successes (an accuracy times ``n`` is fine; it is rounded).
    n : int
        Number of trials (pairs evaluated), >= 1.
    z : float, default=1.96
        Normal quantile (1.96: 95%).

    Returns
    -------
    tuple of float
        (low, high), within [0, 1].
    """
    if n < 1:
        raise ValueError(f"n={n!r} is not allowed; it must be an integer >= 1")
    k = min(max(round(successes), 0), n)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(acc: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of an accuracy ``acc`` measured on ``n`` pairs."""
    return wilson_interval(acc * n, n)


def above_chance(acc: float, n: int, chance: float) -> bool:
    """True when the 95% interval of ``acc`` (on ``n`` pairs) lies entirely above ``chance``."""
    if not np.isfinite(acc) or n < 1:
        return False
    return accuracy_interval(acc, n)[0] > chance


def at_chance(acc: float, n: int, chance: float) -> bool:
    """True when the 95% interval of ``acc`` (on ``n`` pairs) contains ``chance``."""
    if not np.isfinite(acc) or n < 1:
        return True
    lo, hi = accuracy_interval(acc, n)
    return lo <= chance <= hi


def spread(values: Sequence[float]) -> float:
    """Half the range of ``values`` over seeds (0 for a single value, NaN for none)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan")
    return float((v.max() - v.min()) / 2)


def fmt_acc(acc: float, n: int | None = None) -> str:
    """An accuracy with its 95% interval when ``n`` is known, e.g. ``0.733 [0.71, 0.75]``."""
    if not np.isfinite(acc):
        return "–"
    if n is None:
        return f"{acc:.3f}"
    lo, hi = accuracy_interval(acc, n)
    return f"{acc:.3f} [{lo:.3f}, {hi:.3f}]"


def judge_above_chance(claim: str, acc: float, n: int, chance: float, *, settings: str = "",
                       name: str = "accuracy") -> Verdict:
    """``Reproduced`` when ``acc`` is above chance, ``Contradicted`` when at chance.

    Parameters
    ----------
    claim : str
        The statement, e.g. "the G part predicts the rule at α = 0.8".
    acc : float
        The measured accuracy.
    n : int
        Number of pairs it was measured on.
    chance : float
        The chance level (1/P).
    settings : str, default=""
        Where it was measured.
    name : str, default="accuracy"
        What ``acc`` is, for the evidence line.

    Returns
    -------
    Verdict
    """
    lo, hi = accuracy_interval(acc, n) if np.isfinite(acc) else (float("nan"), float("nan"))
    ev = f"{name} {fmt_acc(acc, n)} on {n} pairs; chance 1/P = {chance:.3f}"
    if above_chance(acc, n, chance):
        v = REPRODUCED
    elif at_chance(acc, n, chance):
        v = NOT_SHOWN
        ev += " (at chance)"
    else:
        v = NOT_SHOWN
        ev += " (below chance)"
    return Verdict(claim, v, ev, {name: acc, "n": n, "low": lo, "high": hi, "chance": chance}, settings)


def compare(claim: str, a: Sequence[float] | float, b: Sequence[float] | float, *,
            a_name: str = "a", b_name: str = "b", min_margin: float = 0.0, settings: str = "",
            floor: tuple[float, int, float] | None = None) -> Verdict:
    """Judge the claim "``a`` is larger than ``b``" against the spread over seeds.

    Parameters
    ----------
    claim : str
        The statement being judged.
    a, b : float or sequence of float
        The two quantities, one value per seed.
    a_name, b_name : str, default="a", "b"
        Their names in the evidence line.
    min_margin : float, default=0.0
        The smallest difference that counts (used alone when each side has one seed).
    settings : str, default=""
        Where they were measured.
    floor : tuple of (float, int, float) or None, default=None
        ``(acc, n, chance)``: when given, ``Reproduced`` also needs ``acc`` above chance (so
        that two numbers at chance never reproduce a claim).

    Returns
    -------
    Verdict
        ``Reproduced`` when mean(a) - mean(b) exceeds the margin, ``Contradicted`` when
        mean(b) - mean(a) does, else ``Not shown``.
    """
    av = np.atleast_1d(np.asarray(a, dtype=float))
    bv = np.atleast_1d(np.asarray(b, dtype=float))
    ma, mb = float(np.nanmean(av)), float(np.nanmean(bv))
    seeds = min(av.size, bv.size)
    margin = max(min_margin, spread(av), spread(bv))
    diff = ma - mb
    sd = f"{seeds} seed{'s' if seeds > 1 else ''}"
    ev = (f"{a_name} {ma:.3f} vs {b_name} {mb:.3f} (difference {diff:+.3f}; margin {margin:.3f} = "
          f"{'spread over ' + sd if seeds > 1 else 'fixed, one seed: spread unknown'})")
    if diff > margin:
        v = REPRODUCED
        if floor is not None and not above_chance(*floor):
            v = NOT_SHOWN
            ev += f"; but {fmt_acc(floor[0], floor[1])} is not above chance {floor[2]:.3f}"
    elif -diff > margin:
        v = CONTRADICTED
    else:
        v = NOT_SHOWN
    return Verdict(claim, v, ev, {a_name: ma, b_name: mb, "difference": diff, "margin": margin,
                                  "seeds": seeds}, settings)


def combine(claim: str, parts: Sequence[Verdict], *, settings: str = "") -> Verdict:
    """A claim made of several parts: ``Contradicted`` if any part is, ``Reproduced`` only if
    every part is, else ``Not shown``; the evidence lists every part's."""
    if not parts:
        raise ValueError("parts=[] is not allowed; give at least one part")
    vs = [p.verdict for p in parts]
    v = CONTRADICTED if CONTRADICTED in vs else REPRODUCED if all(x == REPRODUCED for x in vs) else NOT_SHOWN
    ev = "; ".join(f"{p.claim}: {p.verdict} ({p.evidence})" for p in parts)
    nums: dict[str, Any] = {}
    for p in parts:
        nums.update(p.numbers)
    return Verdict(claim, v, ev, nums, settings or parts[0].settings)


def undefined(claim: str, why: str, *, settings: str = "") -> Verdict:
    """``Not shown`` because the quantity is undefined here (``why`` says so)."""
    return Verdict(claim, NOT_SHOWN, why, {}, settings)
