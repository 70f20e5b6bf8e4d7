#!/usr/bin/env python3
"""On-CPU profiling overhead: perfwatchd side by side with `perf record -g` and bpftrace, in one run.

For each sampling frequency it measures, per profiler:
  * in-kernel cost per sample: the BPF program's run time over its run count (kernel.bpf_stats_enabled),
    while watched processes keep every CPU busy, so nearly every sample is of a watched process:
    user-bound (interrupted in user code: the user stack only), syscall-bound (interrupted in the
    kernel: both stacks) and mixed (during the slowdown run); perf has no BPF program;
  * the workload's slowdown: the wall time of a fixed amount of CPU work (`cpu_split work`) under
    the profiler, against the same work with no profiler (median of --repeats runs each);
  * the profiler's own CPU (percent of one core) and peak RSS while it watches 10 low-duty target
    processes for --seconds (perfwatchd's embedded PostgreSQL is reported on its own line).

Run as root from a built tree:  sudo python3 bench/oncpu_overhead.py --build build
It prints a Markdown table (also written to --out).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    """utime + stime of a whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children_of(ppid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                out.append(int(entry))
        except OSError:
            pass
    return out


def hold_bpf_stats():
    """Turns the kernel's BPF run-time stats on for as long as the returned fd stays open
    (BPF_ENABLE_STATS). Unlike the kernel.bpf_stats_enabled sysctl, which anything else on the
    machine may switch off in the middle of a measurement, it is reference-counted."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint32 * 4)()  # union bpf_attr's enable_stats.type = BPF_STATS_RUN_TIME (0)
    fd = libc.syscall(321, 32, ctypes.byref(attr), ctypes.sizeof(attr))  # SYS_bpf (x86-64), BPF_ENABLE_STATS
    if fd < 0:
        raise OSError(ctypes.get_errno(), "bpf(BPF_ENABLE_STATS)")
    return fd


def bpf_progs():
    """{prog id: (name, run_time_ns, run_cnt)} of perf_event programs."""
    progs = json.loads(subprocess.check_output(["bpftool", "prog", "show", "-j"]))
    return {p["id"]: (p.get("name", ""), p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in progs if p.get("type") == "perf_event"}


class Profiler:
    """Starts and stops one profiler; `pids()` are the processes whose CPU and RSS count as its cost."""

    name = "none"

    def __init__(self, hz, workdir, build):
        self.hz, self.workdir, self.build = hz, workdir, build
        self.proc = None
        self.prog_ids = set()

    def start(self, targets):
        before = set(bpf_progs())
        self.launch(targets)
        self.prog_ids = set(bpf_progs()) - before

    def launch(self, targets):
        pass

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGINT if self.name != "perfwatchd" else signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def bpf_totals(self):
        progs = bpf_progs()
        ns = sum(progs[i][1] for i in self.prog_ids if i in progs)
        cnt = sum(progs[i][2] for i in self.prog_ids if i in progs)
        return ns, cnt


class NoProfiler(Profiler):
    name = "none"


class Perfwatch(Profiler):
    name = "perfwatchd"
    target_options = ""  # YAML lines added to every target (variants set python: ...)

    def launch(self, targets):
        state = os.path.join(self.workdir, "state")
        os.makedirs(state, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        config = os.path.join(self.workdir, "perfwatch.yaml")
        with open(config, "w") as f:
            f.write(f"state_dir: {state}\nsampling:\n  frequency_hz: {self.hz}\n  window: 10s\ntargets:\n")
            for i, pattern in enumerate(targets):
                f.write(f"  - name: t{i}\n    match: {{cmdline: {json.dumps(pattern)}}}\n{self.target_options}")
        self.log = open(os.path.join(self.workdir, "perfwatchd.log"), "w")
        self.proc = subprocess.Popen([os.path.join(self.build, "daemon", "perfwatchd"), "--config", config],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        log_path = self.log.name
        for _ in range(600):
            with open(log_path) as f:
                if "perfwatchd started" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("perfwatchd did not start; see " + log_path)

    def postgres_pids(self):
        pid_file = os.path.join(self.workdir, "state", "postgres", "data", "postmaster.pid")
        try:
            with open(pid_file) as f:
                master = int(f.readline())
        except (OSError, ValueError):
            return []
        return [master] + children_of(master)


class PerfRecord(Profiler):
    name = "perf record -g"

    def launch(self, targets):
        out = os.path.join(self.workdir, "perf.data")
        self.proc = subprocess.Popen(["perf", "record", "-a", "-g", "-F", str(self.hz), "-o", out, "--quiet"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(out) and os.path.getsize(out) > 0:
                break
            time.sleep(0.05)
        time.sleep(0.5)


class Bpftrace(Profiler):
    name = "bpftrace"

    def launch(self, targets):
        program = f'profile:hz:{self.hz} /comm == "cpu_split"/ {{ @[ustack, kstack] = count(); }}'
        self.out = open(os.path.join(self.workdir, "bpftrace.out"), "w+")
        self.proc = subprocess.Popen(["bpftrace", "-e", program], stdout=self.out, stderr=subprocess.STDOUT)
        for _ in range(300):
            self.out.seek(0)
            if "Attaching" in self.out.read():
                time.sleep(0.3)
                return
            time.sleep(0.1)
        raise RuntimeError("bpftrace did not attach")


PROFILERS = [NoProfiler, Perfwatch, PerfRecord, Bpftrace]


def cpu_split(build):
    return os.path.join(build, "tests", "workloads", "cpu_split")


def timed_work(build, rounds):
    out = subprocess.check_output([cpu_split(build), "work", str(rounds)], text=True)
    for line in out.splitlines():
        if line.startswith("elapsed_ns "):
            return int(line.split()[1]) / 1e9
    raise RuntimeError("cpu_split work printed no elapsed_ns")


def per_sample_ns(prof, mode, args):
    """Per-sample BPF cost while one `cpu_split MODE` process per CPU keeps every CPU busy, so nearly
    every sample is of a watched process: "split" is interrupted in user mode (user stack only),
    "syscalls" mostly in the kernel (both stacks)."""
    busy = [subprocess.Popen([cpu_split(args.build), mode, "100000"], stdout=subprocess.DEVNULL)
            for _ in range(os.cpu_count())]
    try:
        time.sleep(1)
        ns0, cnt0 = prof.bpf_totals()
        time.sleep(args.cost_seconds)
        ns1, cnt1 = prof.bpf_totals()
    finally:
        for b in busy:
            b.kill()
            b.wait()
    return (ns1 - ns0) / (cnt1 - cnt0) if cnt1 > cnt0 else None


def cost_and_slowdown(profiler_cls, hz, args, workdir):
    """Per-sample BPF cost (user-bound, syscall-bound, and during the timed run) and the wall time of
    a fixed amount of work while another target does read() syscalls."""
    prof = profiler_cls(hz, workdir, args.build)
    prof.start(["cpu_split"])
    try:
        user_ns = per_sample_ns(prof, "split", args)
        kernel_ns = per_sample_ns(prof, "syscalls", args)
        background = subprocess.Popen([cpu_split(args.build), "syscalls", "100000"], stdout=subprocess.DEVNULL)
        try:
            ns0, cnt0 = prof.bpf_totals()
            times = [timed_work(args.build, args.rounds) for _ in range(args.repeats)]
            ns1, cnt1 = prof.bpf_totals()
        finally:
            background.kill()
            background.wait()
    finally:
        prof.stop()
    mixed_ns = (ns1 - ns0) / (cnt1 - cnt0) if cnt1 > cnt0 else None
    return {"user": user_ns, "kernel": kernel_ns, "mixed": mixed_ns}, statistics.median(times)


def ten_targets(profiler_cls, hz, args, workdir):
    """10 target processes at 4% duty each: the profiler's CPU and peak RSS over args.seconds."""
    prof = profiler_cls(hz, workdir, args.build)
    prof.start([f"^bench-worker-{i} " for i in range(10)])
    workers = []
    try:
        for i in range(10):
            workers.append(subprocess.Popen([f"bench-worker-{i}", "duty", str(args.seconds + 30), "4"],
                                            executable=cpu_split(args.build), stdout=subprocess.DEVNULL))
        time.sleep(3)  # discovery and the first window
        pids = prof.pids()
        pg = prof.postgres_pids() if isinstance(prof, Perfwatch) else []
        start = time.monotonic()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        pg0 = sum(cpu_seconds(p) for p in pg if os.path.exists(f"/proc/{p}"))
        time.sleep(args.seconds)
        cpu1 = sum(cpu_seconds(p) for p in pids)
        pg1 = sum(cpu_seconds(p) for p in pg if os.path.exists(f"/proc/{p}"))
        wall = time.monotonic() - start
        rss = max((peak_rss_mb(p) for p in pids), default=0.0)
    finally:
        for w in workers:
            w.kill()
            w.wait()
        prof.stop()
    return 100 * (cpu1 - cpu0) / wall, rss, (100 * (pg1 - pg0) / wall if pg else None)


def emit(table, out):
    """Prints the Markdown table, and writes it to the file `out` names (if any)."""
    print(table)
    if out:
        with open(out, "w") as f:
            f.write(table)


def fmt(value, spec, none="n/a"):
    return none if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--hz", default="99,999")
    parser.add_argument("--rounds", type=int, default=5000, help="cpu_split work rounds per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30, help="length of the 10-target CPU measurement")
    parser.add_argument("--cost-seconds", type=float, default=8, help="length of each per-sample cost measurement")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the profilers load BPF programs and open perf events system-wide")
    args.build = os.path.abspath(args.build)
    for tool in ("perf", "bpftrace", "bpftool"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/setup-deps.sh")
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)

    rows = []
    try:
        for hz in [int(h) for h in args.hz.split(",")]:
            baseline = None
            for cls in PROFILERS:
                with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
                    cost, elapsed = cost_and_slowdown(cls, hz, args, workdir)
                if cls is NoProfiler:
                    baseline = elapsed
                    continue
                with tempfile.TemporaryDirectory(prefix="pw-bench-") as workdir:
                    cpu, rss, pg_cpu = ten_targets(cls, hz, args, workdir)
                rows.append((cls.name, hz, cost, 100 * (elapsed / baseline - 1), cpu, rss, pg_cpu))
                print(f"{cls.name} @ {hz} Hz: ns/sample user-bound {fmt(cost['user'], '.0f')}, "
                      f"syscall-bound {fmt(cost['kernel'], '.0f')}, mixed {fmt(cost['mixed'], '.0f')}; "
                      f"slowdown {100 * (elapsed / baseline - 1):+.2f}%, CPU {cpu:.2f}%, RSS {rss:.1f} MB",
                      file=sys.stderr)
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"])

    ref = {(r[0], r[1]): r for r in rows}
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().release}, {os.cpu_count()} CPUs; "
        f"`sudo python3 bench/oncpu_overhead.py --build {os.path.relpath(args.build)}`",
        "",
        "| profiler | Hz | ns/sample, user-bound | ns/sample, syscall-bound (both stacks) | ns/sample, mixed | "
        "mixed vs bpftrace | workload slowdown | CPU, 10 targets (% of one core) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, hz, cost, slowdown, cpu, rss, pg_cpu in rows:
        bt = ref.get(("bpftrace", hz))
        ratio = cost["mixed"] / bt[2]["mixed"] if cost["mixed"] and bt and bt[2]["mixed"] else None
        cpu_text = f"{cpu:.2f}" + (f" (+{pg_cpu:.2f} PostgreSQL)" if pg_cpu is not None else "")
        lines.append(f"| {name} | {hz} | {fmt(cost['user'], '.0f')} | {fmt(cost['kernel'], '.0f')} | "
                     f"{fmt(cost['mixed'], '.0f')} | {fmt(ratio, '.2f')} | {slowdown:+.2f}% | {cpu_text} | {rss:.1f} |")
    emit("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
