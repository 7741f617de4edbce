#!/usr/bin/env python3
"""MeZO as PyTorch users write it, on the transformer example's task.

The peer that zoopt's MeZO is compared with: the step of the MeZO reference
trainer (Malladi et al. 2023, "Fine-Tuning Language Models with Just Forward
Passes"), written in Python on a TorchScript module. Each step draws a seed;
the perturbation regenerates z tensor by tensor from torch.manual_seed(seed)
with torch.normal and adds it in place: +eps z, -2 eps z, +eps z, then the
update p -= lr * g * z with g = (L+ - L-) / (2 eps): four passes over the
trained tensors and two forward passes per step.

Everything else is the C++ example's (examples/torch/main.cpp): the start
(DIR/start_seed<S>.pt, written by `zoopt_torch_transformer --phase
export-start`), the trained tensors (the head and every LayerNorm, or all
with --all-tensors), the minibatch of each step (64 rows drawn by a CPU
generator seeded with seed * 1000003 + step), the test evaluation, the CSV
curve and the RESULT line, so that the two runs differ only in the optimizer
step. Usage:

  mezo_peer.py --start DIR/start_seed0.pt --out DIR [--passes N] [--lr X]
               [--eps X] [--seed S] [--threads T] [--all-tensors] [--data DIR]
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(folder: str, name: str) -> bytes:
    for path, opener in ((os.path.join(folder, name), open),
                         (os.path.join(folder, name + ".gz"), gzip.open)):
        if os.path.exists(path):
            with opener(path, "rb") as f:
                return f.read()
    sys.exit(f"mezo_peer.py: Fashion-MNIST file '{name}' (or .gz) not found in '{folder}' "
             "(Debian: apt-get install dataset-fashion-mnist)")


def load_split(folder: str, images: str, labels: str):
    im = read_idx(folder, images)
    lb = read_idx(folder, labels)
    count = int.from_bytes(im[4:8], "big")
    # The same float32 values as problems/fashion_mnist.hpp: byte / 255.0f.
    pixels = np.frombuffer(im, dtype=np.uint8, offset=16).astype(np.float32) / np.float32(255)
    return pixels.reshape(count, 784), np.frombuffer(lb, dtype=np.uint8, offset=8)


def task(split, first: int):
    """Rows whose label is in [first, first + 5), in order, relabelled 0..4."""
    pixels, labels = split
    rows = np.nonzero((labels >= first) & (labels < first + 5))[0]
    return (torch.from_numpy(pixels[rows].copy()),
            torch.from_numpy(labels[rows].astype(np.int64) - first))


def batch_rows(n: int, seed: int, step: int, size: int = 64) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed(seed * 1000003 + step)
    return torch.randint(n, (size,), generator=g, dtype=torch.long)


def evaluate(model, x, y):
    loss = correct = 0.0
    with torch.no_grad():
        for at in range(0, x.shape[0], 250):
            logits = model(x[at:at + 250])
            loss += F.cross_entropy(logits, y[at:at + 250]).item() * logits.shape[0]
            correct += logits.argmax(1).eq(y[at:at + 250]).sum().item()
    return correct / x.shape[0], loss / x.shape[0]


def rss_bytes(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return 1024.0 * float(line.split()[1])
    return float("nan")


def perturb(params, seed: int, scale: float) -> None:
    """theta += scale * z, z regenerated tensor by tensor from the step seed."""
    torch.manual_seed(seed)
    for p in params:
        z = torch.normal(mean=0.0, std=1.0, size=p.shape, dtype=p.dtype)
        p.add_(z, alpha=scale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=os.environ.get("ZOOPT_FASHION_MNIST_DIR") or DEFAULT_DATA)
    ap.add_argument("--passes", type=int, default=9000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--all-tensors", action="store_true")
    a = ap.parse_args()
    for name in ("passes", "lr", "eps", "threads"):
        if not getattr(a, name) > 0:
            ap.error(f"--{name} must be positive")
    torch.set_num_threads(a.threads)

    train_x, train_y = task(load_split(a.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"), 5)
    test_x, test_y = task(load_split(a.data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), 5)
    model = torch.jit.load(a.start)
    rss_start = rss_bytes("VmRSS")
    named = list(model.named_parameters())
    params = [p for n, p in named
              if a.all_tensors or n.startswith("head.") or "norm" in n]
    for _, p in named:
        p.requires_grad_(False)
    total = sum(p.numel() for _, p in named)
    trained = sum(p.numel() for p in params)
    label = "mezo-pytorch" + ("-all" if a.all_tensors else "")

    os.makedirs(a.out, exist_ok=True)
    csv = open(os.path.join(a.out, f"curve_{label}.csv"), "w")
    csv.write("step,forward_passes,seconds,train_loss,test_loss,test_accuracy\n")
    every = max(1, a.passes // 20)
    next_point = 0
    eval_seconds = 0.0
    t0 = time.perf_counter()

    def point(step, passes, train_loss):
        nonlocal next_point, eval_seconds
        if passes < next_point:
            return
        next_point += every
        seconds = time.perf_counter() - t0 - eval_seconds  # earlier evaluations excluded
        e0 = time.perf_counter()
        acc, loss = evaluate(model, test_x, test_y)
        eval_seconds += time.perf_counter() - e0
        csv.write(f"{step},{passes},{seconds},{train_loss},{loss},{acc}\n")

    point(0, 0, float("nan"))
    step_seeds = np.random.default_rng(a.seed)
    steps = passes = 0
    eps = a.eps
    with torch.no_grad():
        while passes + 2 <= a.passes:
            rows = batch_rows(train_x.shape[0], a.seed, steps)
            bx, by = train_x.index_select(0, rows), train_y.index_select(0, rows)
            seed = int(step_seeds.integers(1_000_000_000))
            perturb(params, seed, eps)
            plus = F.cross_entropy(model(bx), by).item()
            perturb(params, seed, -2 * eps)
            minus = F.cross_entropy(model(bx), by).item()
            perturb(params, seed, eps)
            g = (plus - minus) / (2 * eps)
            perturb(params, seed, -a.lr * g)
            steps += 1
            passes += 2
            print(f"\r{label}: step {steps}, passes {passes}/{a.passes}, loss {0.5 * (plus + minus):.4f}",
                  end="", file=sys.stderr, flush=True)
            point(steps, passes, 0.5 * (plus + minus))
    print(file=sys.stderr)
    wall = time.perf_counter() - t0 - eval_seconds
    acc, loss = evaluate(model, test_x, test_y)
    peak_growth = rss_bytes("VmHWM") - rss_start
    mib = 4.0 / 1048576.0
    print(f"RESULT {label},{steps},{passes},{wall:.2f},{1e3 * wall / steps:.3f},{acc:.4f},{loss:.4f},"
          f"{peak_growth / 1048576.0:.2f},{total * mib:.3f},{trained * mib:.3f},0.000")


if __name__ == "__main__":
    main()
