"""The training step, eager against compiled (memgen.train.CompiledStep), measured in one run.

One step = forward, backward and optimizer update of R stacked runs, full batch, as the training
loop takes it between history and divergence checks. The eager step is the baseline; the compiled
one is what `train_batch` uses on CUDA (CUDA graphs via torch.compile's "reduce-overhead" mode).
Timings are ms per step after a warm-up (compile time reported separately); the device is named
in the output (GPU figures name the card).

    python benchmarks/bench_step.py [--device cpu|cuda] [--cases 1x129,15x2049] [--steps 200]
"""

from __future__ import annotations

import argparse
import time

import torch

from memgen.configs import RunConfig
from memgen.model import init_params
from memgen.tasks import make_dataset
from memgen.train import BatchedOptimizer, CompiledStep, _train_losses, resolve_device


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def setup(runs: int, width: int, dev: torch.device):
    cs = [RunConfig(p=113, width=width, noise=0.8, seed=s, device=dev.type) for s in range(runs)]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cases", default="1x129,15x2049", help="RUNSxWIDTH, comma separated")
    ap.add_argument("--steps", type=int, default=200)
    ns = ap.parse_args()
    dev = resolve_device(ns.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"device {card}, torch {torch.__version__}, P = 113, full batch, AdamW")
    print(f"{'runs x width':>13} {'eager ms':>9} {'compiled ms':>12} {'speed-up':>9} {'compile s':>10}")
    for case in ns.cases.split(","):
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


if __name__ == "__main__":
    main()
