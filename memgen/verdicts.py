"""One rule for every verdict the book states.

A claim's verdict is exactly one of ``Reproduced``, ``Not shown`` or ``Contradicted``, computed
from numbers with an explicit margin:

* an accuracy counts as *above chance* only when its binomial confidence interval (Wilson score,
  95%, on the number of pairs evaluated) lies entirely above the chance level (1/P; for ``mul``
  a level of its own, :func:`memgen.tasks.chance_level`), and as *at chance* when the
  interval contains it;
* a difference between two quantities counts only when it exceeds the spread over seeds: the
  larger of the two sides' full ranges (max - min over seeds), and at least ``min_margin`` and,
  for accuracies, the 95% sampling margin of two proportions on ``n`` pairs. With three seeds per
  side, two quantities that differ only by chance pass this margin about 2% of the time (the
  half-range would let 12% through; ``tests/test_verdicts.py`` measures both). A single seed has
  no spread: the verdict then says so;
* a claim that something is *kept* (``compare(..., at_least=True)``) or that two numbers differ
  always needs a chance floor where the numbers are accuracies, so that two numbers at chance
  never reproduce a claim.

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
    key : str, default=""
        The key number in a few words (e.g. ``G test 0.733 vs raw 0.011``), for tables.
    """

    claim: str
    verdict: str
    evidence: str
    numbers: dict[str, Any] = field(default_factory=dict)
    settings: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r} is not allowed; choose one of {', '.join(VERDICTS)}")

    @property
    def reproduced(self) -> bool:
        """True when the verdict is ``Reproduced``."""
        return self.verdict == REPRODUCED

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a plain dict (JSON-ready).

        Returns
        -------
        dict
            ``claim``, ``verdict``, ``evidence``, ``numbers`` and ``settings``.
        """
        return {"claim": self.claim, "verdict": self.verdict, "evidence": self.evidence,
                "numbers": dict(self.numbers), "settings": self.settings, "key": self.key}


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

    Raises
    ------
    ValueError
        When ``n`` < 1.
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
    """95% Wilson interval of an accuracy ``acc`` measured on ``n`` pairs.

    Parameters
    ----------
    acc : float
        The accuracy, in [0, 1].
    n : int
        Number of pairs it was measured on, >= 1.

    Returns
    -------
    tuple of float
        (low, high).
    """
    return wilson_interval(acc * n, n)


def above_chance(acc: float, n: int, chance: float) -> bool:
    """True when the 95% interval of ``acc`` (on ``n`` pairs) lies entirely above ``chance``.

    Parameters
    ----------
    acc : float
        The accuracy (NaN is never above chance).
    n : int
        Number of pairs it was measured on.
    chance : float
        The chance level (1/P, or the task's own).

    Returns
    -------
    bool
        Whether the interval's lower end exceeds ``chance``.
    """
    if not np.isfinite(acc) or n < 1:
        return False
    return accuracy_interval(acc, n)[0] > chance


def at_chance(acc: float, n: int, chance: float) -> bool:
    """True when the 95% interval of ``acc`` (on ``n`` pairs) contains ``chance``.

    Parameters
    ----------
    acc : float
        The accuracy (NaN counts as at chance).
    n : int
        Number of pairs it was measured on.
    chance : float
        The chance level (1/P, or the task's own).

    Returns
    -------
    bool
        Whether ``chance`` lies in the interval.
    """
    if not np.isfinite(acc) or n < 1:
        return True
    lo, hi = accuracy_interval(acc, n)
    return lo <= chance <= hi


def spread(values: Sequence[float]) -> float:
    """Half the range of ``values`` over seeds (0 for a single value, NaN for none).

    Parameters
    ----------
    values : sequence of float
        One value per seed; non-finite values are ignored.

    Returns
    -------
    float
        (max - min) / 2 of the finite values.
    """
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan")
    return float((v.max() - v.min()) / 2)


def seed_range(values: Sequence[float] | float) -> float:
    """The full range (max - min) of ``values`` over seeds: the margin a difference must exceed.

    Parameters
    ----------
    values : float or sequence of float
        One value per seed; non-finite values are ignored.

    Returns
    -------
    float
        max - min of the finite values (0 for a single value, NaN for none).
    """
    v = np.atleast_1d(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.max() - v.min()) if v.size else float("nan")


def fmt_seeds(values: Sequence[float] | float, digits: int = 3, unit: str = "seeds") -> str:
    """Mean of ``values`` with their range, e.g. ``0.733 (3 seeds: 0.720–0.750)``.

    Parameters
    ----------
    values : float or sequence of float
        One value per seed (or per ``unit``).
    digits : int, default=3
        Decimals.
    unit : str, default="seeds"
        What the values are one per (e.g. ``"shuffles"`` for a control's shuffled copies).

    Returns
    -------
    str
        The mean alone for one seed, else the mean, the number of seeds and their range; seeds
        without a number (NaN) are left out and counted, e.g. ``0.733 (2 of 3 seeds: 0.720–0.746)``.
    """
    v = np.atleast_1d(np.asarray(values, dtype=float))
    f = v[np.isfinite(v)]
    if f.size == 0:
        return "–"
    if v.size == 1:
        return f"{f[0]:.{digits}f}"
    n = f"{v.size} {unit}" if f.size == v.size else f"{f.size} of {v.size} {unit}"  # NaN: a seed with no number
    if f.size == 1:
        return f"{f[0]:.{digits}f} ({n})"
    return f"{f.mean():.{digits}f} ({n}: {f.min():.{digits}f}–{f.max():.{digits}f})"


def proportion_margin(a: float, b: float, n: int) -> float:
    """95% sampling margin of the difference of two accuracies each measured on ``n`` pairs.

    Parameters
    ----------
    a, b : float
        The two accuracies.
    n : int
        Number of pairs each was measured on.

    Returns
    -------
    float
        1.96 * sqrt(a (1 - a) / n + b (1 - b) / n) (0 when either is not finite).
    """
    if not (np.isfinite(a) and np.isfinite(b)) or n < 1:
        return 0.0
    return float(Z95 * math.sqrt(max(a * (1 - a), 0.0) / n + max(b * (1 - b), 0.0) / n))


def fmt_acc(acc: float, n: int | None = None) -> str:
    """An accuracy with its 95% interval when ``n`` is known, e.g. ``0.733 [0.710, 0.750]``.

    Parameters
    ----------
    acc : float
        The accuracy; a non-finite one prints as a dash.
    n : int or None, default=None
        Number of pairs it was measured on; None prints the accuracy alone.

    Returns
    -------
    str
        Three decimals, with the interval when ``n`` is given.
    """
    if not np.isfinite(acc):
        return "–"
    if n is None:
        return f"{acc:.3f}"
    lo, hi = accuracy_interval(acc, n)
    return f"{acc:.3f} [{lo:.3f}, {hi:.3f}]"


def _floor_ok(floor: tuple[Sequence[float] | float, int, float]) -> bool:
    acc, n, chance = floor
    return all(above_chance(float(x), n, chance) for x in np.atleast_1d(np.asarray(acc, dtype=float)))


def _floor_text(floor: tuple[Sequence[float] | float, int, float]) -> str:
    acc, n, chance = floor
    low = min(np.atleast_1d(np.asarray(acc, dtype=float)), key=lambda x: x if np.isfinite(x) else -1.0)
    return f"{fmt_acc(float(low), n)} is not above chance {chance:.3f}"


def judge_at_least(claim: str, acc: Sequence[float] | float, n: int, level: float, *, settings: str = "",
                   name: str = "accuracy", level_name: str = "") -> Verdict:
    """``Reproduced`` when the 95% interval of every seed's ``acc`` lies above ``level``.

    Parameters
    ----------
    claim : str
        The statement, e.g. "the G part is near-perfect".
    acc : float or sequence of float
        The measured accuracy, one value per seed.
    n : int
        Number of pairs each was measured on.
    level : float
        The level the claim names (e.g. 0.9 for "near-perfect", 1/P for "above chance").
    settings : str, default=""
        Where it was measured.
    name : str, default="accuracy"
        What ``acc`` is, for the evidence line.
    level_name : str, default=""
        How the evidence names the level (default: the number).

    Returns
    -------
    Verdict
        ``Reproduced`` or ``Not shown`` (a level that is not reached is not shown here, which
        is not evidence against it at other settings); the numbers hold the mean, the lowest
        seed's interval, ``n`` and ``level``.
    """
    v = np.atleast_1d(np.asarray(acc, dtype=float))
    ok = [bool(np.isfinite(x)) and n >= 1 and accuracy_interval(float(x), n)[0] > level for x in v]
    worst = float(min(v, key=lambda x: x if np.isfinite(x) else -1.0)) if v.size else float("nan")
    lo, hi = accuracy_interval(worst, n) if np.isfinite(worst) and n >= 1 else (float("nan"), float("nan"))
    what = level_name or f"{level:.3f}"
    ev = (f"{name} {fmt_seeds(v)} on {n} pairs; lowest seed {fmt_acc(worst, n) if n >= 1 else '–'}; "
          f"needs > {what}")
    verdict = REPRODUCED if v.size and all(ok) else NOT_SHOWN
    if verdict == NOT_SHOWN and v.size > 1 and any(ok):
        ev += f" in every seed ({sum(ok)} of {v.size} do)"
    mean = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    return Verdict(claim, verdict, ev, {name: mean, "n": n, "low": lo, "high": hi, "level": level,
                                        "seeds": int(v.size)}, settings, f"{name} {mean:.3f}")


def judge_above_chance(claim: str, acc: Sequence[float] | float, n: int, chance: float, *,
                       settings: str = "", name: str = "accuracy") -> Verdict:
    """``Reproduced`` when ``acc`` is above chance, else ``Not shown`` (at or below chance).

    Parameters
    ----------
    claim : str
        The statement, e.g. "the G part predicts the rule at α = 0.8".
    acc : float or sequence of float
        The measured accuracy (one value per seed: every seed must be above chance).
    n : int
        Number of pairs it was measured on.
    chance : float
        The chance level (1/P, or the task's own).
    settings : str, default=""
        Where it was measured.
    name : str, default="accuracy"
        What ``acc`` is, for the evidence line.

    Returns
    -------
    Verdict
        With the accuracy (mean over seeds), the lowest seed's interval (``low``, ``high``),
        ``n`` and ``chance`` as numbers.
    """
    v = np.atleast_1d(np.asarray(acc, dtype=float))
    worst = float(min(v, key=lambda x: x if np.isfinite(x) else -1.0))
    lo, hi = accuracy_interval(worst, n) if np.isfinite(worst) else (float("nan"), float("nan"))
    level = f"chance 1/P = {chance:.3f}" if abs(1 / chance - round(1 / chance)) < 1e-9 else f"chance {chance:.3f}"
    if v.size == 1:
        ev = f"{name} {fmt_acc(worst, n)} on {n} pairs; {level}"
    else:
        ev = f"{name} {fmt_seeds(v)} on {n} pairs, lowest seed {fmt_acc(worst, n)}; {level}"
    if all(above_chance(float(x), n, chance) for x in v):
        verdict = REPRODUCED
    elif at_chance(worst, n, chance):
        verdict = NOT_SHOWN
        ev += " (at chance)"
    else:
        verdict = NOT_SHOWN
        ev += " (below chance)"
    mean = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    return Verdict(claim, verdict, ev, {name: mean, "n": n, "low": lo, "high": hi, "chance": chance}, settings,
                   f"{name} {mean:.3f}")


def compare(claim: str, a: Sequence[float] | float, b: Sequence[float] | float, *,
            a_name: str = "a", b_name: str = "b", min_margin: float = 0.0, settings: str = "",
            floor: tuple[Sequence[float] | float, int, float] | None = None, n: int | None = None,
            at_least: bool = False, digits: int = 3, b_unit: str = "seeds", margin_why: str = "") -> Verdict:
    """Judge the claim "``a`` is larger than ``b``" (or "at least ``b``") against the spread over seeds.

    Parameters
    ----------
    claim : str
        The statement being judged.
    a, b : float or sequence of float
        The two quantities, one value per seed (``b``: or one per ``b_unit``, e.g. the shuffled
        copies of a control).
    a_name, b_name : str, default="a", "b"
        Their names in the evidence line.
    min_margin : float, default=0.0
        The smallest difference that counts (used alone when each side has one seed), e.g. the
        spacing of the recorded steps when ``a`` and ``b`` are steps at which something happened.
    settings : str, default=""
        Where they were measured.
    floor : tuple of (float or sequence, int, float) or None, default=None
        ``(acc, n, chance)``: when given, ``Reproduced`` also needs ``acc`` (every seed of it)
        above chance, so that two numbers at chance never reproduce a claim.
    n : int or None, default=None
        When ``a`` and ``b`` are accuracies on ``n`` pairs: the margin is at least their 95%
        sampling margin (:func:`proportion_margin`).
    at_least : bool, default=False
        Judge "``a`` is at least ``b``" (kept or improved): ``Reproduced`` unless ``b`` exceeds
        ``a`` by more than the margin. Needs ``floor``, since equal numbers at chance would
        otherwise pass.
    digits : int, default=3
        Decimals in the evidence line.
    b_unit : str, default="seeds"
        What ``b``'s values are one per in the evidence line (e.g. ``"shuffles"``).
    margin_why : str, default=""
        Where ``min_margin`` comes from, named in the evidence line when it sets the margin
        (e.g. ``"snapshots up to 343 steps apart at these events"``).

    Returns
    -------
    Verdict
        ``Reproduced`` when mean(a) - mean(b) exceeds the margin (with ``at_least``: when it is
        above minus the margin) and the floor holds, ``Contradicted`` when mean(b) - mean(a)
        exceeds the margin, else ``Not shown``. The margin is the largest of ``min_margin``,
        either side's range over seeds (:func:`seed_range`) and the sampling margin.

    Raises
    ------
    ValueError
        When ``at_least`` is set without a ``floor``.
    """
    if at_least and floor is None:
        raise ValueError("at_least=True needs a floor=(acc, n, chance): equal numbers at chance must not pass")
    av = np.atleast_1d(np.asarray(a, dtype=float))
    bv = np.atleast_1d(np.asarray(b, dtype=float))
    ma = float(np.nanmean(av)) if np.isfinite(av).any() else float("nan")
    mb = float(np.nanmean(bv)) if np.isfinite(bv).any() else float("nan")
    sizes = [x.size for x in (av, bv) if x.size > 1]  # a single value on one side is a fixed reference
    seeds = min(sizes) if sizes else 1
    ra, rb = seed_range(av), seed_range(bv)
    sampling = proportion_margin(ma, mb, n) if n else 0.0
    margin = max(min_margin, 0.0 if np.isnan(ra) else ra, 0.0 if np.isnan(rb) else rb, sampling)
    diff = ma - mb
    why = []
    if seeds > 1:  # name the side whose range is the larger
        by_b = bv.size > 1 and (av.size <= 1 or (0.0 if np.isnan(rb) else rb) > (0.0 if np.isnan(ra) else ra))
        why.append(f"range over {bv.size} {b_unit}" if by_b else f"range over {av.size} seeds")
    else:
        why.append("one seed: no spread over seeds")
    if sampling and sampling >= margin:
        why.append(f"sampling margin on {n} pairs")
    if margin_why and min_margin > 0 and min_margin >= margin:  # it sets the margin: say so first
        others = max(0.0 if np.isnan(ra) else ra, 0.0 if np.isnan(rb) else rb, sampling)
        why = [margin_why] + [w for w in why if w.startswith("one seed") or others >= min_margin]
    ev = (f"{a_name} {fmt_seeds(av, digits)} vs {b_name} {fmt_seeds(bv, digits, b_unit)} "
          f"(difference {diff:+.{digits}f}; margin {margin:.{digits}f}, {', '.join(why)})")
    if not np.isfinite(diff):
        verdict = NOT_SHOWN
        ev += "; a value is missing"
    elif diff > margin or (at_least and diff >= -margin):
        verdict = REPRODUCED
        if floor is not None and not _floor_ok(floor):
            verdict = NOT_SHOWN
            ev += "; but " + _floor_text(floor)
        elif at_least and diff <= margin:
            ev += "; within the margin: kept"
    elif -diff > margin:
        verdict = CONTRADICTED
    else:
        verdict = NOT_SHOWN
    return Verdict(claim, verdict, ev, {a_name: ma, b_name: mb, "difference": diff, "margin": margin,
                                        "seeds": seeds}, settings,
                   f"{a_name} {ma:.{digits}f} vs {b_name} {mb:.{digits}f}")


def combine(claim: str, parts: Sequence[Verdict], *, settings: str = "", key: str = "") -> Verdict:
    """A claim made of several parts.

    ``Contradicted`` if any part is, ``Reproduced`` only if every part is, else ``Not shown``;
    the evidence lists every part's.

    Parameters
    ----------
    claim : str
        The whole claim.
    parts : sequence of Verdict
        The judged parts (at least one).
    settings : str, default=""
        Where it was measured; empty: the first part's settings.
    key : str, default=""
        The key number; empty: the parts' key numbers joined.

    Returns
    -------
    Verdict
        With the parts' numbers merged.

    Raises
    ------
    ValueError
        When ``parts`` is empty.
    """
    if not parts:
        raise ValueError("parts=[] is not allowed; give at least one part")
    vs = [p.verdict for p in parts]
    v = CONTRADICTED if CONTRADICTED in vs else REPRODUCED if all(x == REPRODUCED for x in vs) else NOT_SHOWN
    ev = " · ".join(f"{p.claim} — {p.verdict}: {p.evidence}" for p in parts)
    nums: dict[str, Any] = {}
    for p in parts:
        nums.update(p.numbers)
    return Verdict(claim, v, ev, nums, settings or parts[0].settings,
                   key or "; ".join(p.key for p in parts if p.key))


def _gist(why: str, most: int = 90) -> str:
    """The first clause of ``why``, cut at a word to at most ``most`` characters."""
    head = why.split("; ")[0].strip()
    cut = len(head) > most
    if cut:
        head = head[:most - 1].rsplit(" ", 1)[0]
    while head.count("(") > head.count(")"):  # no half-open parenthesis
        head, cut = head[:head.rindex("(")], True
    return head.rstrip(" ,:") + ("…" if cut else "")


def undefined(claim: str, why: str, *, settings: str = "", key: str | None = None) -> Verdict:
    """``Not shown`` because the quantity is undefined here (``why`` says so).

    Parameters
    ----------
    claim : str
        The claim.
    why : str
        Why it cannot be judged; becomes the evidence.
    settings : str, default=""
        Where it would have been measured.
    key : str or None, default=None
        The key number, if any (None: the first clause of ``why``, shortened, for tables).

    Returns
    -------
    Verdict
        A ``Not shown`` verdict without numbers.
    """
    return Verdict(claim, NOT_SHOWN, why, {}, settings, _gist(why) if key is None else key)
