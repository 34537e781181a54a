"""Command line: ``python -m memgen <command>``, the commands being train, sweep, analytic, profiles,
produce, results, transformer and fetch-mnist.

Examples
--------
    python -m memgen train --task add --p 59 --width 257 --noise 0.8 --steps 3000 --json
    python -m memgen analytic --task add --p 97 --width 200 --seed 0 --json
    python -m memgen sweep --profile book --widths 65 257 --noises 0 0.4 0.8
    python -m memgen produce --profile paper --device cuda     # on a GPU, resumable
    python -m memgen results --profile paper --table
    python -m memgen transformer --p 23 --noise 0.3 --steps 300 --json   # FF of a Transformer's W_U
    python -m memgen fetch-mnist --dest data/mnist                        # chapter 10's MNIST, checksummed

Bad arguments exit with status 2 and one line naming the argument and what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .configs import ACTIVATIONS, INITS, LOSSES, NOISE_MODES, OPTIMIZERS, PROFILES, TASKS, TRAINING_FIELDS, ConfigError
from .fetch import FetchError
from .results import GROUPS as RESULT_GROUPS
from .results import ResultsError
from .store import MAX_BATCH_NEURONS, SweepError
from .train import DivergenceError, ResourceError


class _Once(argparse._StoreAction):
    """The default ``store`` action, except that an option given twice is an error (argparse
    would silently keep the last value)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = vars(namespace).setdefault("_given", {})
        if self.dest in given and option_string:
            parser.error(f"argument {option_string}: given twice ({given[self.dest]} and "
                         f"{' '.join(map(str, values)) if isinstance(values, list) else values}); give it once")
        given[self.dest] = " ".join(map(str, values)) if isinstance(values, list) else values
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `sweep --width 33` is an error, not --widths
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)  # every plain option of every subcommand
        self.register("action", "store", _Once)

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        vars(ns).pop("_given", None)
        return ns, rest

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
    p.add_argument("--precision", choices=("fp32", "tf32"), help="matmul precision on CUDA (default fp32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``memgen`` argument parser with its subcommands.

    Returns
    -------
    argparse.ArgumentParser
        A parser whose errors exit with status 2 and one line (no usage dump).
    """
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
    dask = s.add_mutually_exclusive_group()  # optional: dask[distributed]
    dask.add_argument("--scheduler", metavar="ADDRESS",
                      help="train the batches on the Dask cluster of this scheduler, e.g. tcp://host:8786")
    dask.add_argument("--workers", type=_positive_int, metavar="N",
                      help="train the batches on a local Dask cluster of N worker processes")

    a = sub.add_parser("analytic", help="accuracy of the analytic cosine network")
    a.add_argument("--task", choices=TASKS, default="add")
    a.add_argument("--p", type=int, default=97)
    a.add_argument("--width", type=int, default=200)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--activation", choices=ACTIVATIONS, default="quadratic")
    a.add_argument("--json", action="store_true")

    sub.add_parser("profiles", help="list the profiles")

    r = sub.add_parser("results", help="print the shipped results of a profile (results/<profile>/)")
    r.add_argument("--profile", default="paper", help=f"one of {', '.join(PROFILES)} (default paper)")
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help='one JSON object {"runs": [...]}, with "transformer" and "images" lists when shipped')
    fmt.add_argument("--table", action="store_true", help="a readable table (the default)")
    r.add_argument("--history", action="store_true", help="include each run's history in --json")

    pr = sub.add_parser("produce", help="train and record every run the chapters read at a profile (resumable)")
    pr.add_argument("--profile", default="paper", help=f"one of {', '.join(PROFILES)} (default paper)")
    pr.add_argument("--groups", nargs="+", choices=RESULT_GROUPS, default=list(RESULT_GROUPS),
                    help="which planned groups to produce (default all)")
    pr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    pr.add_argument("--dry-run", action="store_true", help="list what would be trained, train nothing")
    pr.add_argument("--progress", action="store_true", help="show progress bars")
    pr.add_argument("--max-minutes", type=float, default=None, metavar="M",
                    help="start no new batch after M minutes (a machine lent for a limited time); "
                         "run again to continue")
    pr.add_argument("--batch-neurons", type=int, default=MAX_BATCH_NEURONS, metavar="N",
                    help=f"most neurons (runs x width) per batch (default and most {MAX_BATCH_NEURONS}); fewer "
                         "make smaller checkpoints, which scripts/gpu_produce.sh carries between lent machines")
    pr.add_argument("--widths", type=int, nargs="+", default=None, metavar="M",
                    help="only the planned runs of these widths (runs without a width are kept)")
    pr.add_argument("--noises", type=float, nargs="+", default=None, metavar="A",
                    help="only the planned runs at these label-noise levels")
    pr.add_argument("--mnist-path", default=None, metavar="DIR",
                    help="MNIST's folder (its IDX files) for the images group at profile paper (chapter 10)")

    fm = sub.add_parser("fetch-mnist", help="download MNIST's four IDX files, checksummed (chapter 10)")
    fm.add_argument("--dest", default="data/mnist", metavar="DIR",
                    help="the folder to fill (default data/mnist); give it to produce --mnist-path")

    _transformer_args(sub.add_parser(
        "transformer", help="train (or load) a one-layer Transformer; accuracies before/after FF of W_U"))
    return parser


def _transformer_args(tp: argparse.ArgumentParser) -> None:
    tp.add_argument("--profile", default="book", help=f"one of {', '.join(PROFILES)} (default book)")
    tp.add_argument("--task", choices=TASKS)
    tp.add_argument("--p", type=int, help="modulus P")
    tp.add_argument("--train-frac", type=float)
    tp.add_argument("--split-seed", type=int)
    tp.add_argument("--noise", type=float, help="fraction α of wrong training labels")
    tp.add_argument("--noise-mode", choices=NOISE_MODES)
    tp.add_argument("--seed", type=int)
    tp.add_argument("--d-model", type=int)
    tp.add_argument("--n-heads", type=int)
    tp.add_argument("--d-mlp", type=int)
    tp.add_argument("--lr", type=float)
    tp.add_argument("--weight-decay", type=float)
    tp.add_argument("--steps", type=int)
    tp.add_argument("--n-keep", type=int, help="frequencies of W_U kept by the filtration")
    tp.add_argument("--drop-dc", dest="keep_dc", action="store_false", default=None,
                    help="drop the DC term of W_U too (never changes a prediction)")
    tp.add_argument("--device", choices=("auto", "cpu", "cuda"))
    tp.add_argument("--json", action="store_true", help="print one JSON object")
    tp.add_argument("--progress", action="store_true", help="show a progress bar")


def _transformer(ns: argparse.Namespace) -> int:
    from . import transformer as tfm

    overrides = {k: v for k, v in vars(ns).items() if k not in {"command", "profile", "json", "progress"}}
    run = tfm.train_or_load(tfm.profile_config(ns.profile, **overrides), progress=ns.progress or None)
    out = tfm.report(run)
    if ns.json:
        _print(out, True)
    else:
        print(run.config.label(), f"| kept frequencies {out['kept']}")
        for side in ("before", "after"):
            print(f"{side:6s} FF: " + "  ".join(f"{k} {out[side][k]:.3f}" for k in ("clean_acc", "noisy_acc",
                                                                                   "test_acc")))
    return 0


_NOT_CONFIG = {"command", "profile", "json", "progress", "widths", "noises", "seeds", "scheduler", "workers"}


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; it must be a positive integer")
    return n


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
    """Run one ``memgen`` command.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        The arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 when a parameter is not allowed, a run diverged, it does
        not fit in memory, the results are unusable or a download failed (one line on stderr says
        why).
    """
    ns = build_parser().parse_args(argv)
    try:
        if ns.command == "profiles":
            for prof in PROFILES.values():
                print(f"{prof.name}: {prof.description}; widths {list(prof.widths)}")
            return 0
        if ns.command == "analytic":
            return _analytic(ns)
        if ns.command in ("results", "produce"):
            return _results(ns) if ns.command == "results" else _produce(ns)
        if ns.command == "transformer":
            return _transformer(ns)
        if ns.command == "fetch-mnist":
            from .fetch import fetch_mnist

            print(f"MNIST's IDX files, checksummed, are in {fetch_mnist(ns.dest).resolve()}")
            return 0
        from .experiments import setup, summarize, table
        from .store import train_or_load

        if ns.command == "train":
            st = setup(ns.profile, **_overrides(ns))
            _print(summarize(train_or_load(st.base, progress=ns.progress or None)), ns.json)
            return 0
        st = setup(ns.profile, widths=ns.widths, noises=ns.noises, seeds=ns.seeds, **_overrides(ns))
        if ns.scheduler or ns.workers:  # train the missing batches on a Dask cluster first
            from .distributed import connect
            from .store import sweep

            with connect(scheduler=ns.scheduler, workers=ns.workers) as client:
                sweep(st.grid(), progress=ns.progress or None, client=client)
        rows = table(st.grid(), progress=ns.progress or None)
        if ns.json:
            _print({"runs": rows}, True)
        else:
            for r in rows:
                noisy = "  -  " if r["noisy_acc"] != r["noisy_acc"] else f"{r['noisy_acc']:.3f}"  # NaN: no noisy labels
                print(f"M={r['width']:5d} noise={r['noise']:.2f} seed={r['seed']}  "
                      f"test={r['test_acc']:.3f} noisy={noisy} FF-G test={r['G_test_acc']:.3f}")
        return 0
    except (ConfigError, DivergenceError, ResourceError, ResultsError, FetchError) as e:
        print(f"memgen: error: {e}", file=sys.stderr)
        return 2
    except SweepError as e:  # one line: how many failed, and the first reason
        print(f"memgen: error: {len(e.failures)} run(s) failed and were not stored (finished ones were); "
              f"first: {e.failures[0]}", file=sys.stderr)
        return 2


def _analytic(ns: argparse.Namespace) -> int:
    from .baselines import analytic_weights, class_of_pairs
    from .tasks import all_pairs

    _check_analytic(ns)
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


def _check_analytic(ns: argparse.Namespace) -> None:
    """Validate ``analytic``'s arguments, and refuse before allocating what would not fit."""
    import torch

    from .configs import validate_task, validate_width
    from .train import available_bytes

    validate_task(ns.task, ns.p)
    validate_width(ns.width)
    if ns.seed < 0:
        raise ConfigError(f"seed={ns.seed} is not allowed; it must be an integer >= 0")
    p, m = ns.p, ns.width
    need = 4 * p**3 + 36 * m * p + 64 * p**2 + 2 * 4 * 8192 * m + 2**26  # logits of all p**2 pairs dominate
    have = available_bytes(torch.device("cpu"))
    if need > 0.9 * have:
        raise ResourceError(f"analytic with p={p}, width={m} needs about {need / 2**30:.1f} GiB (the logits of "
                            f"all p**2 pairs) but only {have / 2**30:.1f} GiB is free; use a smaller p")


# (column, format); :func:`_print_table` right-aligns every column to its widest cell
_TABLE = (("task", "{}"), ("p", "{}"), ("activation", "{}"), ("tied", "{!s}"), ("width", "{}"), ("noise", "{:.2f}"),
          ("seed", "{}"), ("steps", "{}"), ("train_acc", "{:.3f}"), ("noisy_acc", "{:.3f}"), ("test_acc", "{:.3f}"),
          ("G_test_acc", "{:.3f}"), ("R_noisy_acc", "{:.3f}"))


_TRANSFORMER_TABLE = (("task", "{}"), ("noise", "{:.2f}"), ("seed", "{}"), ("steps", "{}"), ("n_keep", "{}"),
                      ("noisy_acc", "{:.3f}"), ("test_acc", "{:.3f}"), ("ff_noisy_acc", "{:.3f}"),
                      ("ff_test_acc", "{:.3f}"))
_IMAGES_TABLE = (("data", "{}"), ("hidden", "{}"), ("noise", "{:.2f}"), ("seed", "{}"), ("epochs", "{}"),
                 ("noisy_1", "{:.3f}"), ("clean_1", "{:.3f}"), ("noisy_2", "{:.3f}"), ("clean_2", "{:.3f}"),
                 ("test_end", "{:.3f}"))
#: record kinds besides two-layer runs: (title, table columns, extra row values)
_OTHER_KINDS = {
    "transformer": ("Transformer runs (chapter 9; ff_: after frequency filtration of W_U)", _TRANSFORMER_TABLE,
                    lambda r: {}),
    "images": ("Image networks (chapter 10; noisy_e / clean_e: training-subset accuracy after epoch e)",
               _IMAGES_TABLE, lambda r: {f"{k}_{e}": r["history"][f"{k}_acc"][e] for k in ("noisy", "clean")
                                          for e in (1, 2)} | {"test_end": r["history"]["test_acc"][-1]}),
}


def _run_columns(recs: list[dict]) -> tuple:
    """:data:`_TABLE` with, after ``tied``, each of :data:`~memgen.configs.TRAINING_FIELDS` it does not
    show on which ``recs`` differ (chapter 12's grid in weight decay, chapter 3's runs in optimizer, ...)."""
    shown = [k for k, _ in _TABLE]
    varying = tuple((k, "{:g}" if isinstance(recs[0].get(k), float) else "{}") for k in TRAINING_FIELDS
                    if k not in shown and len({repr(r.get(k)) for r in recs}) > 1)
    i = shown.index("tied") + 1
    return _TABLE[:i] + varying + _TABLE[i:]


def _print_table(recs: list[dict], columns: tuple) -> None:
    cells = [[f.format(r[k]) if r.get(k) is not None else "–" for k, f in columns] for r in recs]
    widths = [max([len(k)] + [len(row[j]) for row in cells]) for j, (k, _) in enumerate(columns)]
    print("  ".join(k.rjust(w) for (k, _), w in zip(columns, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def _results(ns: argparse.Namespace) -> int:
    from .results import load, provenance

    if ns.history and not ns.json:
        raise ConfigError("argument --history: only with --json (the table shows no history)")
    recs = load(ns.profile)
    other = {kind: load(ns.profile, kind=kind) for kind in _OTHER_KINDS}
    other = {kind: rs for kind, rs in other.items() if rs}
    if ns.json:
        strip = lambda rs: [r if ns.history else {k: v for k, v in r.items() if k != "history"} for r in rs]  # noqa: E731
        _print({"runs": strip(recs), **{kind: strip(rs) for kind, rs in other.items()}}, True)
        return 0
    if not recs and not other:
        print(f"no shipped results for profile {ns.profile!r}; produce them with "
              f"`python -m memgen produce --profile {ns.profile}`")
        return 0
    if recs:
        print(provenance(recs))
        _print_table(recs, _run_columns(recs))
    for i, (kind, rs) in enumerate(other.items()):
        title, columns, extra = _OTHER_KINDS[kind]
        print(("\n" if recs or i else "") + title)
        print(provenance(rs))
        _print_table([{**r, **extra(r)} for r in rs], columns)
    return 0


def _produce(ns: argparse.Namespace) -> int:
    from .results import check_produce, plan, produce, select, to_produce

    check_produce(ns.profile, max_minutes=ns.max_minutes, mnist_path=ns.mnist_path, batch_neurons=ns.batch_neurons)
    if ns.dry_run:
        planned = select(plan(ns.profile, ns.groups), ns.widths, ns.noises)
        for (group, configs), todo in zip(planned.items(), to_produce(ns.profile, planned).values()):
            print(f"{group}: {len(todo)} of {len(configs)} run(s) to train")
            for c in todo:
                print(f"  {c.label()} " + (f"steps={c.steps}" if hasattr(c, "steps") else f"epochs={c.epochs}"))
        return 0
    written, present, left = produce(ns.profile, ns.groups, device=ns.device, progress=ns.progress or None,
                                     max_minutes=ns.max_minutes, mnist_path=ns.mnist_path,
                                     batch_neurons=ns.batch_neurons, widths=ns.widths, noises=ns.noises)
    more = f"; {left} run(s) left: run the same command again to continue" if left else ""
    print(f"results/{ns.profile}: {written} record(s) written, {present} already present{more}")
    return 0
