"""Finding checks: the hidden assertion cells at the end of every chapter.

``expect(condition, claim, profile)`` asserts a finding's direction when the chapter ran under a
profile big enough to show it, and otherwise prints an explicit skip line saying which profile it
needs, so a too-small run is never mistaken for a confirmation.
"""

from __future__ import annotations

CHECKED_PROFILES = ("book", "paper")


def expect(condition: bool, claim: str, profile: str, needs: tuple[str, ...] = CHECKED_PROFILES) -> bool:
    """Assert ``condition`` (the finding ``claim``) under the profiles in ``needs``.

    Returns True when checked and held; prints a SKIPPED line and returns False otherwise.
    Raises AssertionError naming the claim when it is checked and fails.
    """
    if profile not in needs:
        print(f"SKIPPED (needs profile {' or '.join(needs)}; ran {profile}): {claim}")
        return False
    assert bool(condition), f"finding not reproduced under profile {profile!r}: {claim}"
    print(f"CHECKED ({profile}): {claim}")
    return True
