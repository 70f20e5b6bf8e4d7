#!/usr/bin/env python3
"""Latency measurement costs, perfwatchd side by side with peers, in one run.

  * uprobe: in-kernel cost per measured call (entry + return BPF programs, run_time_ns / run_cnt with
    kernel.bpf_stats_enabled), perfwatchd against libbpf-tools' funclatency on the same function
    (`sleeper hits`: one call per fresh thread; kprobes/fentry are missing on the CI machines, uprobes work);
  * syscall: in-kernel cost per read() (sys_enter + sys_exit), perfwatchd's path-prefix filter against a
    bpftrace script timing the same reads; and perfwatchd's cost per read() of a process it does not watch;
  * python: ns per Python call of a tiny function, with no probes, with only the no-op profiler CPython 3.11
    needs for function__entry, with perfwatchd's probes enabled (another function measured: every call is
    filtered) and with the function itself measured;
  * statsd: datagrams per second sent by bench/statsd_load (pinned to one core) and received by perfwatchd's
    listener (pinned to another), with the kernel's UDP drop counters; the peer is a bare Python UDP sink.

Run as root from a built tree:  python3 bench/latency_overhead.py --build build
Prints a Markdown table (also written to --out). Numbers are noisy on a shared 2-core VM: repeat them.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oncpu_overhead import cpu_seconds  # noqa: E402

PY = "/usr/bin/python3.11"


def prog_stats():
    """{prog id: (name, run_time_ns, run_cnt)} of every loaded BPF program."""
    progs = json.loads(subprocess.check_output(["bpftool", "prog", "show", "-j"]))
    return {p["id"]: (p.get("name", ""), p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in progs}


def delta(before, after, ids):
    """(run_time_ns, run_cnt) of the programs `ids` between two prog_stats() snapshots."""
    rt = sum(after[i][1] - before.get(i, (0, 0, 0))[1] for i in ids if i in after)
    cnt = sum(after[i][2] - before.get(i, (0, 0, 0))[2] for i in ids if i in after)
    return rt, cnt


class Perfwatchd:
    def __init__(self, build, workdir, config):
        self.build, self.dir = build, workdir
        os.chmod(workdir, 0o755)
        self.config = os.path.join(workdir, "perfwatch.yaml")
        with open(self.config, "w") as f:
            f.write(f"state_dir: {workdir}/state\nlog_level: debug\nsampling:\n  window: 2s\n{config}")
        self.log = os.path.join(workdir, "perfwatchd.log")
        before = set(prog_stats())
        self.proc = subprocess.Popen([f"{build}/daemon/perfwatchd", "--config", self.config],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.wait_log("perfwatchd started", timeout=90)
        self.progs = {i: v[0] for i, v in prog_stats().items() if i not in before}

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_log(self, pattern, timeout=60):
        for _ in range(int(timeout * 10)):
            if re.search(pattern, self.text()):
                return
            if self.proc.poll() is not None:
                sys.exit(f"perfwatchd exited:\n{self.text()}")
            time.sleep(0.1)
        sys.exit(f"perfwatchd never logged {pattern!r}:\n{self.text()}")

    def ids(self, *names):
        return [i for i, n in self.progs.items() if n in names]

    def cli_json(self, *args):
        out = subprocess.check_output([f"{self.build}/daemon/perfwatch", "--config", self.config, *args,
                                       "--format", "json"])
        return json.loads(out)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def gated(argv):
    """Starts argv with stdin on a pipe; it begins its work when the pipe closes."""
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def uprobe_cost(args):
    sleeper = f"{args.build}/tests/workloads/sleeper"
    rows = []
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
        d = Perfwatchd(args.build, workdir, "targets:\n  - name: hits\n    match: {cmdline: \"sleeper hits\"}\n"
                       f"    operations:\n      - {{name: fast, tier: T1, uprobe: \"{sleeper}:op_fast\"}}\n")
        child = gated([sleeper, "hits", "fast", str(args.hits)])
        d.wait_log(rf"uprobe attached.*pid={child.pid}\b")
        before = prog_stats()
        child.communicate("")
        after = prog_stats()
        d.stop()
        rt_in, calls = delta(before, after, d.ids("uprobe_entry"))
        rt_out, _ = delta(before, after, d.ids("uprobe_return"))
        rows.append(("uprobe", "perfwatchd", calls, (rt_in + rt_out) / max(calls, 1)))

    before_ids = set(prog_stats())
    peer = subprocess.Popen(["funclatency", "-u", f"{sleeper}:op_fast"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(3)
    ids = [i for i in prog_stats() if i not in before_ids]
    before = prog_stats()
    gated([sleeper, "hits", "fast", str(args.hits)]).communicate("")
    after = prog_stats()
    peer.send_signal(signal.SIGINT)
    peer.wait(timeout=30)
    rt, cnt = delta(before, after, ids)
    calls = cnt / 2  # entry and return programs
    rows.append(("uprobe", "funclatency", int(calls), rt / max(calls, 1)))
    return rows


def syscall_cost(args):
    sleeper = f"{args.build}/tests/workloads/sleeper"
    rows = []
    with tempfile.TemporaryDirectory(prefix="pw-bench-io-") as data:
        for i in range(4):
            with open(f"{data}/f{i}", "wb") as f:
                f.write(b"x" * 512 * args.reads)
        reads = 4 * args.reads
        with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
            d = Perfwatchd(args.build, workdir, "targets:\n  - name: reader\n    match: {cmdline: \"sleeper reads\"}\n"
                           f"    operations:\n      - {{name: reads, tier: T2, syscall: read, path_prefix: {data}}}\n")
            time.sleep(1)
            ids = d.ids("sys_enter", "sys_exit")
            for watched in (True, False):
                argv = [sleeper, "reads", data, str(args.reads)]
                # Not watched: the same binary under another name does not match the target.
                if not watched:
                    shutil.copy(sleeper, f"{workdir}/other")
                    argv[0] = f"{workdir}/other"
                child = gated(argv)
                time.sleep(1)
                before = prog_stats()
                child.communicate("")
                after = prog_stats()
                rt, cnt = delta(before, after, ids)
                name = "perfwatchd" if watched else "perfwatchd, process not watched"
                rows.append(("syscall read", name, reads, rt / max(reads, 1)))
            d.stop()
        script = ('tracepoint:syscalls:sys_enter_read /comm == "sleeper"/ { @s[tid] = nsecs; } '
                  'tracepoint:syscalls:sys_exit_read /@s[tid]/ { @h = hist(nsecs - @s[tid]); delete(@s[tid]); }')
        before_ids = set(prog_stats())
        peer = subprocess.Popen(["bpftrace", "-e", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5)
        ids = [i for i in prog_stats() if i not in before_ids]
        child = gated([sleeper, "reads", data, str(args.reads)])
        time.sleep(1)
        before = prog_stats()
        child.communicate("")
        after = prog_stats()
        peer.send_signal(signal.SIGINT)
        peer.wait(timeout=30)
        rt, _ = delta(before, after, ids)
        rows.append(("syscall read", "bpftrace", reads, rt / max(reads, 1)))
    return rows


PY_LOOP = """import sys, time  # pw_pybench
def f(x):
    return x + 1
def other(x):
    return x
sys.stdin.read()
if {profile}:
    sys.setprofile(slice)
n = {n}
t = time.perf_counter()
for i in range(n):
    f(i)
print((time.perf_counter() - t) / n * 1e9)
"""


def python_overhead(args):
    def run(profile, daemon=None):
        child = gated([PY, "-c", PY_LOOP.format(profile=profile, n=args.python_calls)])
        if daemon:
            daemon.wait_log(rf"python probes attached.*pid={child.pid}\b")
        out, _ = child.communicate("")
        return float(out)

    rows = [("python call", "no probes", args.python_calls, run(False)),
            ("python call", "no probes, no-op profiler (3.11 needs it)", args.python_calls, run(True))]
    for measured, label in (("other", "perfwatchd, another function measured"), ("f", "perfwatchd, this function measured")):
        with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
            d = Perfwatchd(args.build, workdir, "targets:\n  - name: py\n    match: {cmdline: \"pw_pybench\"}\n"
                           f"    operations:\n      - {{name: m, tier: T1, python: \"<string>.{measured}\"}}\n")
            rows.append(("python call", label, args.python_calls, run(True, d)))
            d.stop()
    return rows


SINK = """import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(3)
n = 0
try:
    while True:
        s.recv(65536)
        n += 1
except socket.timeout:
    pass
print(n)
"""


def udp_drops():
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    fields = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return fields["RcvbufErrors"] + fields["InErrors"]


def statsd(args):
    port = 28125
    load = [f"{args.build}/bench/statsd_load", "127.0.0.1", str(port), str(args.rate), str(args.statsd_seconds)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
        d = Perfwatchd(args.build, workdir, f"statsd:\n  listen: 127.0.0.1:{port}\n"
                       "targets:\n  - name: web\n    match: {comm: pw-nothing}\n"
                       "    operations:\n      - {name: render, tier: T1, statsd: bench.render}\n")
        subprocess.run(["taskset", "-a", "-pc", "0", str(d.proc.pid)], check=True, stdout=subprocess.DEVNULL)
        drops, cpu = udp_drops(), cpu_seconds(d.proc.pid)
        out = subprocess.check_output(["taskset", "-c", "1", *load], text=True)
        time.sleep(5)  # two windows: everything received is in a stored window
        cpu, drops = cpu_seconds(d.proc.pid) - cpu, udp_drops() - drops
        sent = int(out.split()[1])
        received = d.cli_json("latency", "--target", "web", "--since", "5m")["health"]["statsd_packets"]
        d.stop()
        rows.append(("statsd", "perfwatchd", sent, received, drops, 100 * cpu / args.statsd_seconds))
    sink = subprocess.Popen(["taskset", "-c", "0", "python3", "-c", SINK, str(port)], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    drops, cpu = udp_drops(), cpu_seconds(sink.pid)
    out = subprocess.check_output(["taskset", "-c", "1", *load], text=True)
    cpu = cpu_seconds(sink.pid) - cpu
    received = int(sink.communicate()[0])
    rows.append(("statsd", "python UDP sink (no parsing)", int(out.split()[1]), received, udp_drops() - drops,
                 100 * cpu / args.statsd_seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--hits", type=int, default=3000, help="uprobe: calls, one per fresh thread")
    parser.add_argument("--reads", type=int, default=50000, help="syscall: reads per file (4 files)")
    parser.add_argument("--python-calls", type=int, default=2000000)
    parser.add_argument("--rate", type=int, default=200000, help="statsd: datagrams per second")
    parser.add_argument("--statsd-seconds", type=float, default=10)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: perfwatchd and the peers load BPF programs")
    args.build = os.path.abspath(args.build)
    for tool in ("bpftool", "bpftrace", "funclatency", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/setup-deps.sh")
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)

    lines = ["| what | who | events | cost | ratio to perfwatchd |", "|---|---|---:|---:|---:|"]
    for group in (uprobe_cost(args), syscall_cost(args)):
        base = group[0][3]
        for what, who, n, ns in group:
            lines.append(f"| {what} (ns per call, in kernel) | {who} | {n} | {ns:.0f} | {ns / base:.2f} |")
    py = python_overhead(args)
    for what, who, n, ns in py:
        lines.append(f"| {what} (ns per call, wall) | {who} | {n} | {ns:.0f} | {ns / py[0][3]:.2f} (to no probes) |")
    lines += ["", "| statsd at {}/s for {:.0f} s | sent | received | lost | kernel UDP drops | receiver CPU % of a core |"
              .format(args.rate, args.statsd_seconds), "|---|---:|---:|---:|---:|---:|"]
    for _, who, sent, received, drops, cpu in statsd(args):
        lines.append(f"| {who} | {sent} | {received} | {sent - received} | {drops} | {cpu:.0f} |")
    lines += ["", "command: `python3 bench/latency_overhead.py " + " ".join(sys.argv[1:]) + "`"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
