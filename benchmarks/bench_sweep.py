"""Sweep throughput: the batched engine against a plain per-run nn.Module + torch.optim.AdamW loop.

40 small runs (P = 59, widths 17/33/65, noise levels and seeds, 500 full-batch steps each).
Both sides start from the same weights and train on the same data; the batched engine also
records its full history (the baseline records nothing), so the ratio is conservative.

    python benchmarks/bench_sweep.py [--steps 500] [--device cpu|cuda]

Both sides run on the same device; GPU figures name the card.
"""

from __future__ import annotations

import argparse
import time

import torch

from memgen.configs import RunConfig
from memgen.reference import reference_train
from memgen.store import plan_batches
from memgen.train import train_batch


def configs(steps: int, device: str = "cpu") -> list[RunConfig]:
    out = []
    for w in (17, 33, 65):
        for a in (0.0, 0.2, 0.4, 0.6, 0.8):
            for s in (0, 1, 2):
                out.append(RunConfig(p=59, width=w, noise=a, seed=s, steps=steps, device=device))
    return out[:40]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ns = ap.parse_args()
    cs = configs(ns.steps, ns.device)
    sync = torch.cuda.synchronize if ns.device == "cuda" else (lambda: None)
    torch.manual_seed(0)

    def per_run() -> None:
        for c in cs:
            reference_train(c)

    def batched() -> None:
        for batch in plan_batches(cs):
            train_batch(batch, progress=False)

    # alternate the two and keep each side's best time: the build machine is a shared VM
    times: dict[str, list[float]] = {"base": [], "fast": []}
    for _ in range(ns.repeat):
        for name, fn in (("base", per_run), ("fast", batched)):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    base, fast = min(times["base"]), min(times["fast"])
    where = torch.cuda.get_device_name() if ns.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"{where}, torch {torch.__version__}; {len(cs)} runs x {ns.steps} steps, best of {ns.repeat}")
    print(f"per-run nn.Module + AdamW: {base:7.2f} s")
    print(f"batched engine:            {fast:7.2f} s")
    print(f"speed-up: {base / fast:.2f}x (target >= 5x)")


if __name__ == "__main__":
    main()
