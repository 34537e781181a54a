"""Large-run efficiency: achieved matmul FLOP/s of one full-batch training step at P = 113,
widths 1025 / 2049 / 4097, as a fraction of the fp32 GEMM peak measured in the same run.

FLOPs counted: the three products of a step (forward N x M x P, the W gradient and the hidden
gradient), 2 * N * M * P each. Everything else (gathers, activation, optimizer) is overhead.

    python benchmarks/bench_large.py [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from memgen.configs import RunConfig
from memgen.model import batched_logits, init_params
from memgen.tasks import make_dataset
from memgen.train import BatchedOptimizer, _losses, resolve_device


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def gemm_peak(dev: torch.device, n: int = 2048, reps: int = 10) -> float:
    x = torch.randn(n, n, device=dev)
    y = torch.randn(n, n, device=dev)
    x @ y
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        x @ y
    sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def step_rate(width: int, dev: torch.device, reps: int) -> tuple[float, float]:
    c = RunConfig(p=113, width=width, noise=0.8, device=dev.type)
    d = make_dataset(c)
    a = torch.as_tensor(d.a[d.train_idx], device=dev)
    b = torch.as_tensor(d.b[d.train_idx], device=dev)
    y = torch.as_tensor(d.train_labels, device=dev)[None]
    params = init_params([c], dev)
    lr, wd = torch.tensor([c.lr], device=dev), torch.tensor([c.weight_decay], device=dev)
    opt = BatchedOptimizer("adamw", params, lr, wd, c.beta1, c.beta2)

    def step():
        loss = _losses(batched_logits(params, a, b, "relu"), y, "ce")
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        opt.step(params, dict(zip(params, grads)))

    for _ in range(2):
        step()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    sync(dev)
    dt = (time.perf_counter() - t0) / reps
    return dt, 3 * 2 * len(a) * width * c.p / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--reps", type=int, default=10)
    ns = ap.parse_args()
    dev = resolve_device(ns.device)
    peak = gemm_peak(dev)
    print(f"device {dev}, threads {torch.get_num_threads()}, fp32 GEMM peak {peak / 1e9:.1f} GFLOP/s")
    for w in (1025, 2049, 4097):
        dt, rate = step_rate(w, dev, ns.reps)
        print(f"M={w:5d}: {dt * 1e3:8.2f} ms/step, {rate / 1e9:7.1f} GFLOP/s, "
              f"{rate / peak:6.1%} of peak (target >= 60%)")


if __name__ == "__main__":
    main()
