#!/usr/bin/env python3
"""Python profiling overhead: perfwatchd walking CPython frames, side by side with perfwatchd
profiling the same processes natively (python: off) and with `perf record -g`, in one run.

For each sampling frequency it measures:
  * in-kernel cost per sample (the on-CPU program's run_time_ns / run_cnt, BPF run-time stats)
    while one Debian python3.11 process per CPU keeps every CPU busy in Python code, at two stack
    depths: the split workload (7 Python frames) and recursion to 60 frames (near the default
    limit of 64); the walk's cost is the difference between the two perfwatchd variants;
  * the Python workload's slowdown: the time a fixed amount of Python work takes
    (`python_workload.py work`) profiled, against the same work not profiled, in pairs run back
    to back (in alternating order), so that the load others put on a shared machine hits both
    halves of a pair alike; the median over pairs. perfwatchd runs throughout and only the
    profiled half matches a target; perf record runs only for the profiled half. CPU time (the
    kernel charges the sampling interrupt, BPF program included, to the interrupted task) and
    wall time. The table also gives the share of each CPU-second the BPF program itself takes
    (frequency x cost per sample): the slowdown's floor.
Everything is repeated --rounds times; the table gives the median and the range.

Run as root from a built tree:  sudo python3 bench/python_overhead.py --build build
It prints a Markdown table (also written to --out). No Python profiler other than perfwatch can
be installed from Debian's packages (py-spy, austin come from PyPI only): perf is the peer.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oncpu_overhead import Perfwatch, PerfRecord, emit, hold_bpf_stats  # noqa: E402

PYTHON = "/usr/bin/python3.11"
WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "workloads", "python_workload.py")
PROFILED = "python_workload.py .* profiled$"  # what the perfwatchd variants watch


class PerfwatchNative(Perfwatch):
    name = "perfwatchd, python: off"
    target_options = "    python: off\n"


class PerfwatchPython(Perfwatch):
    name = "perfwatchd, python: auto"


PROFILERS = [PerfwatchNative, PerfwatchPython, PerfRecord]
# Python frames per stack: <module>, main, split, via_x, hot_x, burn, spin; <module>, main, 57 x recurse, spin.
LOADS = {"split (7 frames)": ["split", "100000"], "recursion (60 frames)": ["recurse", "100000", "57"]}


def per_sample_ns(prof, args, load):
    busy = [subprocess.Popen([PYTHON, WORKLOAD] + load + ["profiled"], stdout=subprocess.DEVNULL)
            for _ in range(os.cpu_count())]
    try:
        time.sleep(1.5)  # found, thread states cached, stacks known
        ns0, cnt0 = prof.bpf_totals()
        time.sleep(args.cost_seconds)
        ns1, cnt1 = prof.bpf_totals()
    finally:
        for b in busy:
            b.kill()
            b.wait()
    return (ns1 - ns0) / (cnt1 - cnt0) if cnt1 > cnt0 else None


def timed_work(args, marker):
    """(wall seconds, CPU seconds) of one run of the fixed work."""
    out = subprocess.check_output([PYTHON, WORKLOAD, "work", str(args.work), marker], text=True)
    values = dict(line.split() for line in out.splitlines() if line.startswith(("elapsed_ns ", "cpu_ns ")))
    return int(values["elapsed_ns"]) / 1e9, int(values["cpu_ns"]) / 1e9


def paired_slowdowns(cls, hz, args, workdir, prof):
    """Per pair, the profiled run's (wall, CPU) slowdown in percent against its unprofiled twin."""
    pairs = []
    for i in range(args.repeats):
        runs = {}
        for profiled in ([False, True] if i % 2 == 0 else [True, False]):
            if profiled and cls is PerfRecord:
                prof.start([PROFILED])
                try:
                    runs[profiled] = timed_work(args, "profiled")
                finally:
                    prof.stop()
            else:
                runs[profiled] = timed_work(args, "profiled" if profiled else "alone")
        pairs.append(tuple(100 * (p / a - 1) for p, a in zip(runs[True], runs[False])))
    return pairs


def measure(cls, hz, args):
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
        prof = cls(hz, workdir, args.build)
        if cls is PerfRecord:
            return {name: None for name in LOADS}, paired_slowdowns(cls, hz, args, workdir, prof)
        prof.start([PROFILED])
        try:
            costs = {name: per_sample_ns(prof, args, load) for name, load in LOADS.items()}
            return costs, paired_slowdowns(cls, hz, args, workdir, prof)
        finally:
            prof.stop()


def spread(values, spec):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    text = format(statistics.median(values), spec)
    return text if len(values) == 1 else f"{text} ({format(min(values), spec)} to {format(max(values), spec)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--hz", default="99,999")
    parser.add_argument("--work", type=int, default=200, help="rounds of python_workload.py work per timed run")
    parser.add_argument("--repeats", type=int, default=6, help="profiled/unprofiled pairs per profiler and round")
    parser.add_argument("--rounds", type=int, default=3, help="times the whole measurement is repeated")
    parser.add_argument("--cost-seconds", type=float, default=5, help="length of each per-sample cost measurement")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the profilers load BPF programs and open perf events system-wide")
    args.build = os.path.abspath(args.build)
    for tool in ("perf", "bpftool"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/setup-deps.sh")
    stats_fd = hold_bpf_stats()

    # results[(profiler, hz)]: per round, (costs by load, [(wall %, CPU %) per pair])
    results = {}
    hzs = [int(h) for h in args.hz.split(",")]
    for round_no in range(args.rounds):
        for hz in hzs:
            for cls in PROFILERS:
                costs, pairs = measure(cls, hz, args)
                results.setdefault((cls.name, hz), []).append((costs, pairs))
                cost_text = ", ".join(f"{k} {v:.0f} ns" for k, v in costs.items() if v is not None)
                print(f"round {round_no + 1}: {cls.name} @ {hz} Hz: {cost_text or 'no BPF program'}; slowdown "
                      f"{statistics.median(c for _, c in pairs):+.2f}% CPU time, "
                      f"{statistics.median(w for w, _ in pairs):+.2f}% wall time", file=sys.stderr)
    os.close(stats_fd)

    loads = list(LOADS)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs, {args.rounds} rounds "
        f"of {args.repeats} pairs (median, range over rounds of each round's median); "
        f"`sudo python3 bench/python_overhead.py --build {os.path.relpath(args.build)}`",
        "",
        "| profiler | Hz | " + " | ".join(f"ns/sample, {l}" for l in loads) +
        " | BPF share of a CPU-second, split (%) | slowdown, CPU time (%) | slowdown, wall time (%) |",
        "|---|---|" + "---|" * len(loads) + "---|---|---|",
    ]
    for (name, hz), rounds in results.items():
        cells = [spread([c[l] for c, _ in rounds], ".0f") for l in loads]
        share = spread([hz * c[loads[0]] / 1e7 if c[loads[0]] else None for c, _ in rounds], ".3f")
        cpu = spread([statistics.median(c for _, c in pairs) for _, pairs in rounds], "+.2f")
        wall = spread([statistics.median(w for w, _ in pairs) for _, pairs in rounds], "+.2f")
        lines.append(f"| {name} | {hz} | " + " | ".join(cells) + f" | {share} | {cpu} | {wall} |")
    lines += ["", "Python walking, per sample (python: auto minus python: off, same round and load):", ""]
    for hz in hzs:
        native = results.get((PerfwatchNative.name, hz), [])
        python = results.get((PerfwatchPython.name, hz), [])
        for load in loads:
            walk = [p[0][load] - n[0][load] for n, p in zip(native, python) if n[0][load] and p[0][load]]
            lines.append(f"- {hz} Hz, {load}: {spread([w / 1000 for w in walk], '.2f')} us")
    emit("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
