"""Command line: ``python -m memgen train | analytic | sweep | profiles``.

Examples
--------
    python -m memgen train --task add --p 59 --width 513 --noise 0.8 --steps 3000 --json
    python -m memgen analytic --task add --p 97 --width 200 --seed 0 --json
    python -m memgen sweep --profile book --widths 65 257 --noises 0 0.4 0.8

Bad arguments exit with status 2 and one line naming the argument and what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .configs import ACTIVATIONS, INITS, LOSSES, NOISE_MODES, OPTIMIZERS, PROFILES, TASKS, ConfigError
from .train import DivergenceError, ResourceError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"memgen: error: {message}\n")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="book", help=f"one of {', '.join(PROFILES)} (default book)")
    p.add_argument("--task", choices=TASKS)
    p.add_argument("--p", type=int, help="modulus P")
    p.add_argument("--train-frac", type=float)
    p.add_argument("--split-seed", type=int)
    p.add_argument("--noise-mode", choices=NOISE_MODES)
    p.add_argument("--activation", choices=ACTIVATIONS)
    p.add_argument("--tied", action="store_true", default=None, help="tie U = V")
    p.add_argument("--no-bias", dest="bias", action="store_false", default=None)
    p.add_argument("--init", choices=INITS)
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="memgen", description="Train and analyse the paper's networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train (or load) one run and report every metric")
    _run_args(t)
    t.add_argument("--width", type=int)
    t.add_argument("--noise", type=float)
    t.add_argument("--seed", type=int)

    s = sub.add_parser("sweep", help="train (or load) a widths x noises x seeds grid, batched")
    _run_args(s)
    s.add_argument("--widths", type=int, nargs="+")
    s.add_argument("--noises", type=float, nargs="+")
    s.add_argument("--seeds", type=int, nargs="+")

    a = sub.add_parser("analytic", help="accuracy of the analytic cosine network")
    a.add_argument("--task", choices=TASKS, default="add")
    a.add_argument("--p", type=int, default=97)
    a.add_argument("--width", type=int, default=200)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--activation", choices=ACTIVATIONS, default="quadratic")
    a.add_argument("--json", action="store_true")

    sub.add_parser("profiles", help="list the profiles")
    return parser


_NOT_CONFIG = {"command", "profile", "json", "progress", "widths", "noises", "seeds"}


def _overrides(ns: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(ns).items() if k not in _NOT_CONFIG and v is not None}


def _print(obj: dict, as_json: bool) -> None:
    from .metrics import json_safe

    if as_json:
        print(json.dumps(json_safe(obj)))
    else:
        for k, v in obj.items():
            print(f"{k}: {v}")


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        if ns.command == "profiles":
            for prof in PROFILES.values():
                print(f"{prof.name}: {prof.description}; widths {list(prof.widths)}")
            return 0
        if ns.command == "analytic":
            return _analytic(ns)
        from .experiments import setup, summarize, table
        from .store import train_or_load

        if ns.command == "train":
            st = setup(ns.profile, **_overrides(ns))
            _print(summarize(train_or_load(st.base, progress=ns.progress or None)), ns.json)
            return 0
        st = setup(ns.profile, widths=ns.widths, noises=ns.noises, seeds=ns.seeds, **_overrides(ns))
        rows = table(st.grid(), progress=ns.progress or None)
        if ns.json:
            _print({"runs": rows}, True)
        else:
            for r in rows:
                print(f"M={r['width']:5d} noise={r['noise']:.2f} seed={r['seed']}  "
                      f"test={r['test_acc']:.3f} noisy={r['noisy_acc']:.3f} FF-G test={r['G_test_acc']:.3f}")
        return 0
    except (ConfigError, DivergenceError, ResourceError) as e:
        print(f"memgen: error: {e}", file=sys.stderr)
        return 2


def _analytic(ns: argparse.Namespace) -> int:
    from .baselines import analytic_weights, class_of_pairs
    from .tasks import all_pairs

    w = analytic_weights(ns.task, ns.p, ns.width, ns.seed, ns.activation)
    pred = w.predict()
    true = class_of_pairs(ns.task, ns.p)
    out = {"task": ns.task, "p": ns.p, "width": ns.width, "seed": ns.seed,
           "activation": ns.activation, "acc": float((pred == true).mean())}
    if ns.task == "mul":
        a, b = all_pairs(ns.p)
        nz = (a != 0) & (b != 0)
        out["acc_nonzero"] = float((pred[nz] == true[nz]).mean())
    _print(out, ns.json)
    return 0
