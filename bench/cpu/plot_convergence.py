#!/usr/bin/env python3
"""Plot the convergence suite as one SVG (no dependencies beyond Python 3).

Usage: plot_convergence.py OUT.svg RUNS.csv [RUNS.csv ...]

Reads the `eval` rows of the suite's runs.csv files (zoopt_convergence
--out DIR writes DIR/runs.csv) and draws, per problem, one bar per method:
MeZO's median forward passes to target over the method's (> 1: fewer passes
than MeZO), on a log axis, with the interquartile range of the method's
passes as a whisker (MeZO's median fixed). A method with a median run that
missed the target is marked "misses"; where MeZO misses, the method's median
passes are written instead of a bar. Lines at 1 and 1.5.
"""
import csv
import math
import statistics
import sys
from collections import defaultdict


def quartiles(values):
    v = sorted(values)
    n = len(v)

    def at(q):  # linear interpolation between order statistics
        x = q * (n - 1)
        lo = math.floor(x)
        hi = min(lo + 1, n - 1)
        if math.isinf(v[lo]) or math.isinf(v[hi]):
            return v[hi] if x > lo else v[lo]
        return v[lo] + (v[hi] - v[lo]) * (x - lo)

    return at(0.25), at(0.5), at(0.75)


def load(paths):
    """problem -> method -> list of passes, one per evaluation seed. A run
    found in several files (the same method re-run beside others) counts
    once; the files must agree on it, as fixed seeds make them."""
    runs = defaultdict(lambda: defaultdict(dict))  # problem -> method -> seed -> passes
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["phase"] != "eval":
                    continue
                missed = row["steps_to_target"] == "inf"
                passes = math.inf if missed else float(row["forward_passes"])
                seeds = runs[row["problem"]][row["method"]]
                seed = row["seed"]
                if seed in seeds and seeds[seed] != passes:
                    sys.exit(f"{path}: {row['problem']} {row['method']} seed {seed}: "
                             f"{passes} passes, another file says {seeds[seed]}")
                seeds[seed] = passes
    return {p: {m: list(s.values()) for m, s in ms.items()} for p, ms in runs.items()}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = load(sys.argv[2:])
    problems = [p for p in sorted(runs) if "mezo" in runs[p]]
    lo, hi = 0.05, 4.0  # ratio axis (log)
    left, width, bar, gap = 230, 420, 14, 4
    x = lambda r: left + width * (math.log(min(max(r, lo), hi)) - math.log(lo)) / (
        math.log(hi) - math.log(lo))
    out = []
    y = 40
    for p in problems:
        mezo = statistics.median(runs[p]["mezo"])
        methods = sorted(runs[p], key=lambda m: (m != "mezo", m))
        what = "MeZO misses the target" if math.isinf(mezo) else f"MeZO median {mezo:.0f} passes"
        out.append(f'<text x="10" y="{y}" font-weight="bold">{esc(p)} ({what})</text>')
        y += 10
        for m in methods:
            q1, med, q3 = quartiles(runs[p][m])
            n = len(runs[p][m])
            reached = sum(1 for v in runs[p][m] if not math.isinf(v))
            label = f"{m} ({reached}/{n})"
            out.append(f'<text x="{left - 6}" y="{y + bar - 3}" text-anchor="end" '
                       f'font-size="11">{esc(label)}</text>')
            if math.isinf(mezo) and not math.isinf(med):  # no ratio: MeZO misses
                out.append(f'<text x="{left + 4}" y="{y + bar - 3}" font-size="11">'
                           f'reaches the target: median {med:.0f} passes</text>')
            elif math.isinf(med):
                out.append(f'<text x="{left + 4}" y="{y + bar - 3}" font-size="11" '
                           f'fill="#a00">misses</text>')
            else:
                r = mezo / med
                color = "#3a7" if r >= 1.5 else ("#59c" if r >= 1 else "#c85")
                out.append(f'<rect x="{left}" y="{y}" width="{x(r) - left:.1f}" '
                           f'height="{bar}" fill="{color}"/>')
                r_lo = mezo / q3 if not math.isinf(q3) else lo
                r_hi = mezo / q1
                ym = y + bar / 2
                out.append(f'<line x1="{x(r_lo):.1f}" x2="{x(r_hi):.1f}" y1="{ym}" y2="{ym}" '
                           f'stroke="#222"/>')
                out.append(f'<text x="{x(max(r, r_hi)) + 4:.1f}" y="{y + bar - 3}" '
                           f'font-size="10">{r:.2f}</text>')
            y += bar + gap
        y += 22
    axis = []
    for t in (0.1, 0.25, 0.5, 1, 1.5, 2, 4):
        axis.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="30" y2="{y - 20}" '
                    f'stroke="{"#000" if t in (1, 1.5) else "#ddd"}" '
                    f'stroke-dasharray="{"" if t == 1 else "3,3"}"/>')
        axis.append(f'<text x="{x(t):.1f}" y="{y - 6}" text-anchor="middle" '
                    f'font-size="10">{t}</text>')
    axis.append(f'<text x="{left + width / 2}" y="{y + 10}" text-anchor="middle" font-size="11">'
                f'MeZO median passes / method median passes (log; whisker: IQR)</text>')
    height = y + 20
    with open(sys.argv[1], "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" '
                f'height="{height}" font-family="sans-serif" font-size="12">\n')
        f.write('<rect width="100%" height="100%" fill="white"/>\n')
        f.write("\n".join(axis + out) + "\n</svg>\n")

if __name__ == "__main__":
    main()
