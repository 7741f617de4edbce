#!/usr/bin/env python3
"""Times the PyTorch way of MeZO's parameter passes, for comparison with
bench/cuda (zoopt_cuda_bench) on the same GPU.

The MeZO reference implementation perturbs parameters tensor by tensor:

    torch.manual_seed(seed)
    for p in params:
        z = torch.normal(mean=0, std=1, size=p.size(), device=p.device, dtype=p.dtype)
        p.data.add_(z, alpha=scale * eps)   # (the reference writes p.data = p.data + ...)

and makes four such passes per step (+eps, -2 eps, +eps, then the update
-lr * g * z with the same seed). This script measures, with CUDA events:

  perturb   one pass (manual_seed + normal + add_ per tensor)
  step      a whole MeZO step's parameter work: the four passes (the loss
            evaluations are left out, as in BM_MezoStep3/2)

for 2^20 ... 2^30 elements (as far as memory allows), split into --tensors
equal tensors. Output: one CSV line per measurement
(name,dtype,elements,tensors,seconds_median,GB_per_s), GB/s counting one read
and one write of the parameters per pass.

Usage:
    python3 bench/torch_perturb.py [--dtype float32|bfloat16|float16]
                                   [--tensors 1] [--min-log2 20] [--max-log2 30]
                                   [--repeats 20]
"""
import argparse
import statistics
import sys


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--tensors", type=int, default=1)
    ap.add_argument("--min-log2", type=int, default=20)
    ap.add_argument("--max-log2", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--eps", type=float, default=1e-3)
    return ap.parse_args()


def main():
    args = parse()
    try:
        import torch
    except ImportError:
        print("skipped: PyTorch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    dtype = getattr(torch, args.dtype)
    dev = torch.device("cuda")
    eps = args.eps
    print(f"# device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    print("name,dtype,elements,tensors,seconds_median,GB_per_s")

    def perturb(params, seed, scale):
        torch.manual_seed(seed)
        for p in params:
            z = torch.normal(mean=0, std=1, size=p.size(), device=p.device, dtype=p.dtype)
            p.data.add_(z, alpha=scale * eps)

    def update(params, seed, lr, g):
        torch.manual_seed(seed)
        for p in params:
            z = torch.normal(mean=0, std=1, size=p.size(), device=p.device, dtype=p.dtype)
            p.data.add_(z, alpha=-lr * g)

    def step(params, seed):
        perturb(params, seed, 1.0)   # L+ would be evaluated here
        perturb(params, seed, -2.0)  # L- here
        perturb(params, seed, 1.0)   # restore
        update(params, seed, 1e-6, 0.5)

    def timed(fn, repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        fn(0)  # warm-up
        torch.cuda.synchronize()
        times = []
        for r in range(repeats):
            start.record()
            fn(r + 1)
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) * 1e-3)
        return statistics.median(times)

    elt = torch.tensor([], dtype=dtype).element_size()
    for k in range(args.min_log2, args.max_log2 + 1, 2):
        n = 1 << k
        free, _ = torch.cuda.mem_get_info()
        # parameters + one noise tensor of the largest parameter
        need = n * elt + (n // args.tensors) * elt
        if need * 1.1 > free:
            print(f"# 2^{k}: skipped, not enough device memory")
            continue
        per = n // args.tensors
        params = [torch.randn(per, device=dev, dtype=dtype) * 0.02 for _ in range(args.tensors)]
        bytes_pass = 2 * n * elt
        t = timed(lambda s: perturb(params, s, 1.0), args.repeats)
        print(f"torch_perturb,{args.dtype},{n},{args.tensors},{t:.6e},{bytes_pass / t / 1e9:.1f}")
        t = timed(lambda s: step(params, s), args.repeats)
        print(f"torch_mezo_step,{args.dtype},{n},{args.tensors},{t:.6e},{4 * bytes_pass / t / 1e9:.1f}")
        del params
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
