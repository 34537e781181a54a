"""Finding checks: the hidden assertion cells at the end of every chapter.

``expect_verdict(verdict, profile, book=..., paper=...)`` asserts the verdict a chapter computed
(with the rule of :mod:`memgen.verdicts`) is the one measured for that profile, so a change that
loses (or newly shows) an effect fails the build instead of silently changing a sentence. Under a
profile without an expectation it prints an explicit SKIPPED line. ``expect(condition, claim,
profile)`` is the plain form for a condition computed in the chapter.

The ``book`` profile's numbers are trained on the build machine's CPU, and the last bits of a
float32 sum depend on the vector kernels and BLAS code path torch picks for that CPU: the same
seeds then train slightly different networks. A claim whose measured difference lies near its margin
can change its verdict from one machine to the next (two 2-core build machines, 2026-11-26: six
of the book's claims did, by one step each: chapters 6, 9, 13, 15 (two) and 16; on the AVX-512
machine, torch's AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``) give the older machine's verdicts at
five of them (at the sixth, chapter 15's power law, the AVX-512 one); the thread count changes
nothing). As a stand-in for a third CPU, the whole ``book`` profile was also trained there with
torch's generic kernels and MKL's compatible code path (``ATEN_CPU_CAPABILITY=default
MKL_CBWR=COMPATIBLE``): one more claim moved by one step (chapter 12's IPR pruning). Such a claim's
expectation is the tuple of the verdicts measured on the build machines (and that stand-in), so
the build fails only on a verdict no machine has given; the page shows the verdict of the machine
that built it.
"""

from __future__ import annotations

from ..verdicts import VERDICTS

CHECKED_PROFILES = ("book", "paper")


def expect(condition: bool, claim: str, profile: str, needs: tuple[str, ...] = CHECKED_PROFILES) -> bool:
    """Assert ``condition`` (the finding ``claim``) under the profiles in ``needs``.

    Returns True when checked and held; prints a SKIPPED line and returns False otherwise.

    Parameters
    ----------
    condition : bool
        The finding's condition, computed in the chapter.
    claim : str
        The finding in words, printed with the CHECKED or SKIPPED line and in the assertion message.
    profile : str
        The profile the chapter ran under.
    needs : tuple of str, default=CHECKED_PROFILES
        The profiles under which the condition is checked (``("book", "paper")``).

    Returns
    -------
    bool
        True when checked and held; False when ``profile`` is not in ``needs`` (skipped).

    Raises
    ------
    AssertionError
        Naming the claim, when it is checked and fails.
    """
    if profile not in needs:
        print(f"SKIPPED (needs profile {' or '.join(needs)}; ran {profile}): {claim}")
        return False
    if not condition:  # raised, not asserted: the check holds under `python -O` too
        raise AssertionError(f"finding not reproduced under profile {profile!r}: {claim}")
    print(f"CHECKED ({profile}): {claim}")
    return True


def expect_verdict(verdict, profile: str, **expected: str | tuple[str, ...]) -> bool:
    """Assert that ``verdict`` (a :class:`memgen.verdicts.Verdict`) is the expected one under ``profile``.

    ``expected`` maps profile names to a verdict word (or a tuple of allowed words), e.g.
    ``book="Reproduced", paper="Reproduced"``. Profiles without an expectation print a SKIPPED
    line and return False.

    Parameters
    ----------
    verdict : Verdict
        The verdict the chapter computed.
    profile : str
        The profile the chapter ran under.
    **expected : str or tuple of str
        The allowed verdict word(s) by profile name.

    Returns
    -------
    bool
        True when checked and held; False when ``profile`` has no expectation (skipped).

    Raises
    ------
    AssertionError
        Naming the claim, the verdict and its evidence, when the verdict is not an allowed one.
    ValueError
        When an expected word under ``profile`` is not a verdict word.
    """
    if profile not in expected:
        print(f"SKIPPED (no expectation under profile {profile}): {verdict.claim}")
        return False
    allowed = expected[profile] if isinstance(expected[profile], tuple) else (expected[profile],)
    unknown = [w for w in allowed if w not in VERDICTS]
    if unknown:
        raise ValueError(f"{profile}={expected[profile]!r} is not allowed; "
                         f"each word must be one of {', '.join(VERDICTS)}")
    if verdict.verdict not in allowed:
        raise AssertionError(f"under profile {profile!r} expected {' or '.join(allowed)} but got "
                             f"{verdict.verdict}: {verdict.claim}. {verdict.evidence}")
    print(f"CHECKED ({profile}): {verdict.verdict}: {verdict.claim}")
    return True


def expect_verdicts(verdicts: dict, profile: str, expected: dict[str, dict[str, str | tuple[str, ...]]]) -> int:
    """:func:`expect_verdict` for several verdicts by id: ``expected`` maps a verdict id to
    ``{profile: verdict word(s)}``. A verdict that is expected under ``profile`` but absent fails;
    one that is not expected there is skipped. Returns the number checked.

    Parameters
    ----------
    verdicts : dict of str to Verdict
        The chapter's verdicts by id (e.g. ``Findings.verdicts``).
    profile : str
        The profile the chapter ran under.
    expected : dict of str to dict
        By verdict id, the allowed verdict word(s) by profile name (as ``**expected`` of
        :func:`expect_verdict`).

    Returns
    -------
    int
        The number of verdicts checked (and held).

    Raises
    ------
    AssertionError
        When an expected verdict is absent from ``verdicts`` or is not an allowed one.
    """
    checked = 0
    for key, exp in expected.items():
        if profile not in exp:
            print(f"SKIPPED (no expectation under profile {profile}): {key}")
            continue
        if key not in verdicts:
            raise AssertionError(f"under profile {profile!r} expected a verdict {key!r}; got {sorted(verdicts)}")
        checked += expect_verdict(verdicts[key], profile, **exp)
    return checked
