#!/usr/bin/env python3
"""Markdown tables from Google Benchmark JSON files written by zoopt's CPU
benchmarks (--benchmark_out=FILE --benchmark_out_format=json).

    tables.py throughput RUN1.json [RUN2.json ...]   one column per run
    tables.py estimator RUN.json
"""
import json
import re
import sys


def load(path):
    with open(path) as f:
        return json.load(f)["benchmarks"]


def fmt(v, digits=3):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 1e9:
        return f"{v / 1e9:.2f} G"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.0f} M"
    return f"{v:.{digits}g}"


def throughput(paths):
    runs = [{b["name"]: b for b in load(p)} for p in paths]
    names = list(runs[0].keys())
    cols = [
        ("zoopt_Bps", "zoopt B/s"),
        ("memcpy_Bps", "memcpy B/s"),
        ("frac_of_memcpy", "zoopt / memcpy"),
        ("torch_Bps", "libtorch B/s"),
        ("torch_over_zoopt", "libtorch time / zoopt time"),
        ("memcpy_equiv", "zoopt step in memcpys"),
        ("torch_memcpy_equiv", "libtorch step in memcpys"),
    ]
    used = [c for c in cols if any(c[0] in r.get(n, {}) for r in runs for n in names)]
    print("| benchmark | " + " | ".join(h for _, h in used) + " |")
    print("|---" * (len(used) + 1) + "|")
    for n in names:
        cells = []
        for key, _ in used:
            vals = [r[n].get(key) for r in runs if n in r]
            if all(v is None for v in vals):
                cells.append("-")
            else:
                cells.append(" / ".join(fmt(v) for v in vals))
        short = n.replace("/manual_time", "").replace("zoopt::", "")
        print(f"| {short} | " + " | ".join(cells) + " |")


def estimator(path):
    rows = load(path)
    print("| function | sampler | eps | n | method | bias_rel | bias_se_rel | var_rel | cosine |")
    print("|---|---|---|---|---|---|---|---|---|")
    pat = re.compile(r"estimator/([^/]+)/([^/]+)/([^/]+)/eps:([^/]+)/n:(\d+)")
    for b in rows:
        m = pat.match(b["name"])
        if not m:
            continue
        func, method, sampler, eps, n = m.groups()
        print(
            f"| {func} | {sampler} | {eps} | {n} | {method} | {b['bias_rel']:.3g} | "
            f"{b['bias_se_rel']:.2g} | {b['var_rel']:.3g} | {b['cosine']:.3f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("throughput", "estimator"):
        sys.exit(__doc__)
    if sys.argv[1] == "throughput":
        throughput(sys.argv[2:])
    else:
        estimator(sys.argv[2])
