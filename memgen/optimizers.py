"""The optimizer comparison (chapter 11): which optimizers, at which rates and weight decays.

Every optimizer trains the same setting; AdamW keeps the profile's rate and decoupled decay, and
the others are matched to it by the weight shrink per step, lr × wd (see
:func:`optimizer_settings`). :func:`comparison_configs` gives the runs, which both the chapter
(:mod:`memgen.book.optimizers`) and the shipped results (:func:`memgen.results.plan`) use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .configs import ConfigError, RunConfig, get_profile

#: Width and steps by profile when not given (small enough to train five optimizers × seeds).
SIZE = {"test": (65, 150), "book": (129, 600), "paper": (2049, 20_000), "paper20k": (2049, 20_000)}
#: Default learning rates of Muon and SGD (AdamW and Adam use the profile's).
MUON_LR, SGD_LR = 0.05, 3.0
#: The label noise α of the comparison when not given.
NOISE = 0.4
#: The optimizers as the chapter names them.
NAMES = ("AdamW", "Adam", "Muon", "SGD", "SGD at AdamW's lr")


def optimizer_settings(lr0: float, wd0: float, lrs: Mapping[str, float] | None = None) -> dict[str, dict]:
    """Optimizer, learning rate and weight decay of each of :data:`NAMES`.

    AdamW gets the profile's ``lr0`` and decoupled decay ``wd0``; Adam the same rate without decay;
    Muon and SGD their own rates (:data:`MUON_LR`, :data:`SGD_LR`) with the decay set so that the
    shrink per step, lr × wd, equals AdamW's; the control SGD runs at AdamW's rate and decay.

    Parameters
    ----------
    lr0 : float
        AdamW's learning rate (the profile's).
    wd0 : float
        AdamW's weight decay (the profile's).
    lrs : mapping of str to float or None, default=None
        {adamw, adam, muon, sgd: lr} overriding the rates.

    Returns
    -------
    dict of str to dict
        For each name of :data:`NAMES`: ``optimizer``, ``lr`` and ``weight_decay``.

    Raises
    ------
    ConfigError
        When ``lrs`` names another optimizer or a rate that is not a positive number.
    """
    lrs = dict(lrs or {})
    bad = sorted(set(lrs) - {"adamw", "adam", "muon", "sgd"})
    if bad or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                      for v in lrs.values()):
        raise ConfigError(f"lrs={lrs!r} is not allowed; give positive learning rates "
                          "for some of adamw, adam, muon, sgd")
    shrink = lr0 * wd0  # AdamW's weight shrink per step, matched by Muon and SGD
    lr = {"adamw": lr0, "adam": lr0, "muon": MUON_LR, "sgd": SGD_LR, **lrs}
    return {
        "AdamW": dict(optimizer="adamw", lr=lr["adamw"], weight_decay=wd0),
        "Adam": dict(optimizer="adam", lr=lr["adam"], weight_decay=0.0),
        "Muon": dict(optimizer="muon", lr=lr["muon"], weight_decay=shrink / lr["muon"]),
        "SGD": dict(optimizer="sgd", lr=lr["sgd"], weight_decay=shrink / lr["sgd"]),
        "SGD at AdamW's lr": dict(optimizer="sgd", lr=lr0, weight_decay=wd0),
    }


def comparison_configs(profile: str, *, task: str = "add", noise: float = NOISE, width: int | None = None,
                       steps: int | None = None, seeds: Sequence[int] = (0, 1, 2),
                       lrs: Mapping[str, float] | None = None) -> dict[str, list[RunConfig]]:
    """The runs of the comparison: every optimizer of :data:`NAMES` over ``seeds``.

    Parameters
    ----------
    profile : {"test", "book", "paper"}
        The profile (its modulus, split, lr and weight decay).
    task : str, default="add"
        The task.
    noise : float, default=0.4
        α, the same for every optimizer.
    width, steps : int or None, default=None
        None: the profile's entry in :data:`SIZE`.
    seeds : sequence of int, default=(0, 1, 2)
        The seeds.
    lrs : mapping of str to float or None, default=None
        Rate overrides (see :func:`optimizer_settings`).

    Returns
    -------
    dict of str to list of RunConfig
        Name: one config per seed.
    """
    prof = get_profile(profile)
    w0, s0 = SIZE.get(profile, SIZE["book"])
    opts = optimizer_settings(prof.base["lr"], prof.base["weight_decay"], lrs)
    return {name: [prof.config(task=task, noise=noise, width=width or w0, steps=steps or s0, seed=s, **kw)
                   for s in seeds] for name, kw in opts.items()}
