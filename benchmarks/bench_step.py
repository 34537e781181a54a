"""The training step, eager against compiled (memgen.train.CompiledStep), measured in one run.

One step = forward, backward and optimizer update of R stacked runs, full batch, as the training
loop takes it between history and divergence checks. The eager step is the baseline; the compiled
one is what `train_batch` uses on CUDA (CUDA graphs via torch.compile's "reduce-overhead" mode).
Timings are ms per step after a warm-up (compile time reported separately); the device is named
in the output (GPU figures name the card).

``--check`` first takes one compiled step and one eager step from the same state, at the start
of training, after 1, 2 and 3 steps and after 50, and compares every weight and optimizer buffer
(relative to its scale, within 1e-4; see :func:`check_compiled`); then it trains two short runs
through ``train_batch`` both ways and asks their recorded losses to stay within 1%
(:func:`check_training`). The script exits with status 1 when either fails or compiling fails,
so that a GPU session can turn the compiled step on only where it was checked (``--cases ''``
skips the timings). A last line says what ``torch.compile`` did: graphs compiled, graph breaks,
other fallbacks to eager and CUDA-graph skips (:func:`compile_report`):

    python benchmarks/bench_step.py --device cuda --check && export MEMGEN_COMPILE=1

    python benchmarks/bench_step.py [--device cpu|cuda] [--cases 1x129,15x2049] [--steps 200] [--check]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

from memgen.configs import RunConfig
from memgen.model import init_params
from memgen.tasks import make_dataset
from memgen.train import BatchedOptimizer, CompiledStep, _train_losses, resolve_device, train_batch

#: how far one compiled step may land from one eager step taken from the same state, relative to
#: the largest entry of each weight or optimizer buffer
CHECK_RTOL = 1e-4
#: how far a short compiled run's recorded losses may drift from the eager run's (relative)
TRAIN_RTOL = 1e-2


def sync(dev: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if dev.type == "cuda":
        torch.cuda.synchronize()


def setup(runs: int, width: int, dev: torch.device, p: int = 113):
    """Stacked runs (α = 0.8, seeds 0, 1, ...) ready to step: the batch's first config, the
    training pairs ``a``, ``b``, the labels ``y`` (runs, pairs), the parameters and AdamW."""
    cs = [RunConfig(p=p, width=width, noise=0.8, seed=s, device=dev.type) for s in range(runs)]
    data = [make_dataset(c) for c in cs]
    d0 = data[0]
    a = torch.as_tensor(d0.a[d0.train_idx], device=dev)
    b = torch.as_tensor(d0.b[d0.train_idx], device=dev)
    y = torch.stack([torch.as_tensor(d.train_labels, device=dev) for d in data])
    params = init_params(cs, dev)
    opt = BatchedOptimizer("adamw", params, torch.full((runs,), cs[0].lr, device=dev),
                           torch.full((runs,), cs[0].weight_decay, device=dev), cs[0].beta1, cs[0].beta2)
    return cs[0], a, b, y, params, opt


def eager_step(params, a, b, y, c0, opt) -> None:
    """One eager training step (forward, backward, AdamW update), in place."""
    losses = _train_losses(params, a, b, y, c0.activation, c0.loss)
    grads = torch.autograd.grad(losses.sum(), list(params.values()))
    opt.step(params, dict(zip(params, grads)))


def time_steps(step, args, dev: torch.device, steps: int) -> float:
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*args)
    sync(dev)
    return (time.perf_counter() - t0) / steps * 1e3


def relative_difference(x: torch.Tensor, ref: torch.Tensor) -> float:
    """The largest entry of ``|x - ref|`` over the largest of ``|ref|``.

    Inf where either tensor has a value that is not finite.

    Parameters
    ----------
    x : torch.Tensor
        The tensor compared.
    ref : torch.Tensor
        The reference, of the same shape.

    Returns
    -------
    float
        The difference relative to the reference's scale (0 when both are all zeros).
    """
    if x.shape != ref.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} and ref {tuple(ref.shape)}; they must be the same")
    if not (torch.isfinite(x).all() and torch.isfinite(ref).all()):
        return math.inf
    scale = float(ref.abs().max())
    diff = float((x - ref).abs().max())
    return diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)


def check_compiled(dev: torch.device, p: int = 113, width: int = 129,
                   at: tuple[int, ...] = (0, 1, 2, 3, 50)) -> tuple[bool, str]:
    """One compiled step against one eager step from the same state, at a few points of training.

    Trajectories cannot be compared over many steps: Adam turns float rounding in near-zero
    gradients into whole steps of size lr, so that even two eager runs whose gradients differ
    by one part in 10^7 are 10^-3 apart after 64 steps. One step from the same state can: the two
    differ only by rounding, while a wrong loss, gradient or bias correction moves weights by a
    good part of lr = 1e-3, about 1% of their scale early in training. On this 2-core CPU
    (P = 113, M = 129) the largest difference is 2.9e-6 of the scale, in the Adam buffers of the
    bias, whose gradient is a sum with much cancellation; :data:`CHECK_RTOL` allows 1e-4.

    Parameters
    ----------
    dev : torch.device
        The device.
    p : int, default=113
        The modulus of the two runs (α = 0.8, seeds 0 and 1).
    width : int, default=129
        Their width.
    at : tuple of int, default=(0, 1, 2, 3, 50)
        After how many eager steps to compare (0: the first step, where Adam's bias corrections
        are largest). One compiled step is taken at each: on CUDA the first calls compile and
        record the CUDA graphs, the later ones replay them.

    Returns
    -------
    tuple of (bool, str)
        Whether the compiled step matches the eager one within :data:`CHECK_RTOL` on every
        weight and optimizer buffer (:func:`relative_difference`), and one line saying so with the
        largest difference.
    """
    c0, a, b, y, params, opt = setup(2, width, dev, p)
    comp = CompiledStep(opt, params, dev)
    buffers = [x for st in opt.state.values() for x in st.values()]
    tensors = [x.detach() for x in [*params.values(), *buffers]]  # the same storage, in place
    worst, done = 0.0, 0
    for n in sorted(at):
        for _ in range(n - done):
            eager_step(params, a, b, y, c0, opt)
        done = n
        before, t = [x.clone() for x in tensors], opt.t
        comp(params, a, b, y, c0, opt)
        compiled = [x.clone() for x in tensors]
        with torch.no_grad():  # back to the same state, in place (the compiled step's static addresses)
            for x, x0 in zip(tensors, before):
                x.copy_(x0)
        opt.t = t
        eager_step(params, a, b, y, c0, opt)
        worst = max([worst] + [relative_difference(xc, x) for x, xc in zip(tensors, compiled)])
    what = f"one step after {', '.join(map(str, sorted(at)))} eager steps, 2 runs, P = {p}, M = {width}"
    if not comp.ok:
        return False, f"compiled step: compiling failed on this device ({what}): keep it off"
    ok = worst <= CHECK_RTOL
    verdict = "matches the eager step" if ok else "differs from the eager step: keep it off"
    return ok, (f"compiled step {verdict} ({what}): largest difference in a weight or optimizer buffer, "
                f"relative to its scale, {worst:.1e} (allowed {CHECK_RTOL:g})")


def check_training(dev: torch.device, p: int = 113, width: int = 129, steps: int = 300) -> tuple[bool, str]:
    """Two short runs through ``train_batch``, eager and compiled, as ``produce`` trains them.

    This exercises what :func:`check_compiled` does not: compiled steps interleaved with the
    eager forward passes that record history and check for divergence. The runs drift apart
    (see :func:`check_compiled`), so only a loose bound is asked: the same recorded steps and every
    recorded loss within :data:`TRAIN_RTOL` (on this 2-core CPU, P = 113, M = 129, 300 steps:
    1.5e-3), against a broken step's far larger differences.

    Parameters
    ----------
    dev : torch.device
        The device.
    p : int, default=113
        The modulus of the two runs (α = 0.2 and 0.8).
    width : int, default=129
        Their width.
    steps : int, default=300
        Their length.

    Returns
    -------
    tuple of (bool, str)
        Whether the compiled runs compiled and stayed within the bound, and one line saying so.
    """
    cs = [RunConfig(p=p, width=width, noise=a, steps=steps, seed=s, device=dev.type) for a, s in ((0.2, 0), (0.8, 1))]
    before, runs = os.environ.get("MEMGEN_COMPILE"), {}
    try:
        for mode in ("0", "1"):
            os.environ["MEMGEN_COMPILE"] = mode
            runs[mode] = train_batch(cs, progress=False)
    finally:
        if before is None:
            del os.environ["MEMGEN_COMPILE"]
        else:
            os.environ["MEMGEN_COMPILE"] = before
    what = f"train_batch, 2 runs, P = {p}, M = {width}, {steps} steps"
    if not all(r.meta.get("compiled") for r in runs["1"]):
        return False, f"compiled training: compiling failed on this device ({what}): keep it off"
    worst = 0.0
    for e, c in zip(runs["0"], runs["1"]):
        if e.history["step"] != c.history["step"]:
            return False, f"compiled training departs from eager training: keep it off ({what}): recorded steps differ"
        el, cl = np.asarray(e.history["loss"]), np.asarray(c.history["loss"])
        rel = np.abs(cl - el) / np.maximum(np.abs(el), 1e-12)
        worst = max(worst, float(rel.max()) if np.isfinite(rel).all() else math.inf)
    ok = worst <= TRAIN_RTOL
    verdict = "follows eager training" if ok else "departs from eager training: keep it off"
    return ok, (f"compiled training {verdict} ({what}): largest relative difference of a recorded loss "
                f"{worst:.1e} (allowed {TRAIN_RTOL:g})")


def compile_report() -> str:
    """What ``torch.compile`` did in this process so far, from dynamo's counters, in one line.

    The checks above compare results; this says how the compiled step ran: how many graphs were
    compiled, how many graph breaks dynamo made at calls (``counters["graph_break"]``), how many
    other fallbacks it made (``counters["unimplemented"]``: a branch on a tensor's value, a
    frame skipped whole, e.g. a loop with a break inside), in both cases running some code
    eagerly, and how many times inductor skipped CUDA graphs. None of them changes results, only
    speed; the timing rows show what they cost. ``TORCH_LOGS=graph_breaks`` says where they were.

    Returns
    -------
    str
        ``torch.compile: G graph(s) compiled, B graph break(s) at calls, U other fallback(s) to
        eager, S CUDA-graph skip(s)``, followed by the first reason (a break's, else a
        fallback's) when there was one.
    """
    from torch._dynamo.utils import counters

    breaks, other = counters["graph_break"], counters["unimplemented"]
    line = (f"torch.compile: {counters['stats']['unique_graphs']} graph(s) compiled, "
            f"{sum(breaks.values())} graph break(s) at calls, {sum(other.values())} other fallback(s) to eager, "
            f"{counters['inductor']['cudagraph_skips']} CUDA-graph skip(s)")
    if breaks or other:
        first = " ".join(str(next(iter(breaks or other))).split())
        line += f"; first: {first[:200]}"
    return line


def main(argv: list[str] | None = None) -> int:
    """Run the checks (with ``--check``) and time the cases; the exit status is 1 if a check failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cases", default="1x129,15x2049", help="RUNSxWIDTH, comma separated ('' times nothing)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--check", action="store_true",
                    help="first check that the compiled step trains as the eager one (exit status 1 if not)")
    ns = ap.parse_args(argv)
    dev = resolve_device(ns.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"device {card}, torch {torch.__version__}, P = 113, full batch, AdamW")
    ok = True
    if ns.check:
        for check in (check_compiled, check_training):
            passed, line = check(dev)
            print(line, flush=True)
            ok &= passed
    cases = [c for c in ns.cases.split(",") if c]
    if cases:
        print(f"{'runs x width':>13} {'eager ms':>9} {'compiled ms':>12} {'speed-up':>9} {'compile s':>10}")
    for case in cases:
        runs, width = map(int, case.split("x"))
        c0, a, b, y, params, opt = setup(runs, width, dev)
        for _ in range(3):
            eager_step(params, a, b, y, c0, opt)
        eager = time_steps(eager_step, (params, a, b, y, c0, opt), dev, ns.steps)
        comp = CompiledStep(opt, params, dev)
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(3):  # compile, record the graphs, warm up
            comp(params, a, b, y, c0, opt)
        sync(dev)
        compile_s = time.perf_counter() - t0
        compiled = time_steps(comp, (params, a, b, y, c0, opt), dev, ns.steps)
        note = "" if comp.ok else "  (compiling failed: eager)"
        print(f"{case:>13} {eager:9.3f} {compiled:12.3f} {eager / compiled:8.2f}x {compile_s:10.1f}{note}")
    if ns.check or cases:
        print(compile_report())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
