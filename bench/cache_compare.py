#!/usr/bin/python3
"""Page cache figures of perfwatchd beside its peers, on one workload: a file read cold (after
POSIX_FADV_DONTNEED) and then warm, by tests/workloads/cache_reader, in separate windows.

Peers, run at the same time over the same workload:
  - libbpf-tools' cachestat (kprobes/fentry on add_to_page_cache_lru, mark_page_accessed, ...): its
    output is recorded as is; on kernels without kprobes and fentry it cannot load;
  - bpftrace over the same filemap tracepoints, for the workload's process only (comm cache_reader),
    per phase: the pages added to the cache, the get_pages ranges summed as they come (no
    de-duplication of filemap_read's repeated ranges while it waits for readahead, no clamp to the end
    of the file: what a naive script counts), and the pages of page faults and fault-around (the
    process's own code and libraries);
  - /proc/vmstat pgpgin (KiB read from block devices, system-wide) during each phase.

Usage (root, from the repository, after a build):
  python3 bench/cache_compare.py --build build [--mib 64]
Prints a Markdown table: perfwatch's figures for the target, per phase, beside each peer's, with their
ratios (bench/cache_results.md holds three runs and what explains each difference).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Keyed by CLOCK_MONOTONIC second (bpftrace's nsecs), which the phases' time.monotonic() bounds select.
BPFTRACE = r'''
tracepoint:filemap:mm_filemap_get_pages /comm == "cache_reader"/ {
  @ranges[nsecs / 1000000000] = sum(args->last_index - args->index + 1); @events[nsecs / 1000000000] = count(); }
tracepoint:filemap:mm_filemap_add_to_page_cache /comm == "cache_reader"/ { @added[nsecs / 1000000000] = sum(1 << args->order); }
tracepoint:filemap:mm_filemap_map_pages /comm == "cache_reader"/ { @faulted[nsecs / 1000000000] = sum(args->last_index - args->index + 1); }
tracepoint:filemap:mm_filemap_fault /comm == "cache_reader"/ { @faulted[nsecs / 1000000000] = sum(1); }
'''


def vmstat(key):
    with open("/proc/vmstat") as f:
        for line in f:
            name, value = line.split()
            if name == key:
                return int(value)
    return 0


def bpftrace_maps(text):
    """{map: {second: value}} from bpftrace's exit dump ("@name[key]: value")."""
    maps = {}
    for line in text.splitlines():
        m = re.match(r"@(\w+)\[(\d+)\]: (\d+)", line)
        if m:
            maps.setdefault(m.group(1), {})[int(m.group(2))] = int(m.group(3))
    return maps


def sleep_into_next_window(window):
    now = time.time()
    time.sleep(window - now % window + 0.3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    page = os.sysconf("SC_PAGESIZE")
    pages = args.mib * (1 << 20) // page
    work = tempfile.mkdtemp(prefix="pw-cache-bench-")
    os.chmod(work, 0o755)
    path = f"/var/tmp/pw-cache-bench-{os.getpid()}"
    with open(path, "wb") as f:
        for _ in range(args.mib * 256):
            f.write(os.urandom(4096))
        f.flush()
        os.fsync(f.fileno())

    config = os.path.join(work, "perfwatch.yaml")
    with open(config, "w") as f:
        f.write(f"state_dir: {work}/state\nsampling:\n  window: 2s\ndashboard:\n  listen: 127.0.0.1:{20000 + os.getpid() % 20000}\n"
                "targets:\n  - name: reader\n    match: {comm: cache_reader}\n")
    log = open(os.path.join(work, "perfwatchd.log"), "w")
    procs = []

    def started(proc):
        procs.append(proc)
        return proc

    # Whatever happens, nothing is left running (the daemon, its PostgreSQL, the peers).
    try:
        daemon = started(subprocess.Popen([f"{build}/daemon/perfwatchd", "--config", config], stdout=log, stderr=log))
        for _ in range(600):
            if "perfwatchd started" in open(log.name).read():
                break
            time.sleep(0.1)
        bpftrace = started(subprocess.Popen(["bpftrace", "-e", BPFTRACE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        cachestat = started(subprocess.Popen(["cachestat", "1", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        time.sleep(3)
        reader = started(subprocess.Popen([f"{build}/tests/workloads/cache_reader"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              text=True))
        time.sleep(1)
        phases = {}
        for phase in ("cold", "warm"):
            time.sleep(1.1)  # the phases' monotonic seconds must not overlap
            sleep_into_next_window(2)
            before, start = vmstat("pgpgin"), time.monotonic()
            reader.stdin.write(f"{phase} {path}\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == "done"
            # Phases are over a second apart (a window boundary lies between): whole seconds separate them.
            phases[phase] = {"pgpgin": (vmstat("pgpgin") - before) * 1024 // page,
                             "seconds": range(int(start), int(time.monotonic()) + 1)}
        reader.stdin.close()
        reader.wait()
        time.sleep(8)
        bpftrace.send_signal(2)
        traced = bpftrace.communicate()[0]
        cachestat.terminate()
        cachestat_out = cachestat.communicate()[0]
        out = subprocess.run([f"{build}/daemon/perfwatch", "--config", config, "cache", "--target", "reader", "--since", "5m",
                              "--format", "json"], capture_output=True, text=True, check=True).stdout
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
        os.unlink(path)
        shutil.rmtree(work, ignore_errors=True)

    doc = json.loads(out)
    series = next(c for c in doc["caches"] if c["name"] == "page_cache")["series"]
    cold = max(series, key=lambda w: w["misses"])
    later = series[series.index(cold) + 1:]
    if not later:
        sys.exit("no window after the cold read's:\n" + json.dumps(series, indent=1))
    warm = max(later, key=lambda w: w["lookups"])
    traced = bpftrace_maps(traced)

    def peer(name, phase):
        return sum(v for sec, v in traced.get(name, {}).items() if sec in phases[phase]["seconds"])

    def row(what, mine, theirs, by):
        ratio = f"{mine / theirs:.3f}" if theirs else "-"
        print(f"| {what} | {mine} | {theirs} | {by} | {ratio} |")

    print(f"file: {args.mib} MiB = {pages} pages; kernel {os.uname().release}\n")
    print("| phase: figure (pages) | perfwatch (target) | peer | peer is | perfwatch / peer |\n| --- | ---: | ---: | --- | ---: |")
    for phase, w in (("cold", cold), ("warm", warm)):
        row(f"{phase}: misses", w["misses"], peer("added", phase), "bpftrace, pages added by cache_reader")
        row(f"{phase}: misses", w["misses"], phases[phase]["pgpgin"], "/proc/vmstat pgpgin (system-wide)")
        row(f"{phase}: lookups", w["lookups"], peer("ranges", phase), "bpftrace, get_pages ranges summed as they come")
        row(f"{phase}: lookups", w["lookups"], peer("ranges", phase) + peer("faulted", phase),
            "bpftrace, the same + fault and fault-around pages")
        row(f"{phase}: lookups", w["lookups"], pages, "the file's size in pages")
    print(f"\nperfwatch hit ratio: cold window {cold['hit_ratio']:.3f}, warm window {warm['hit_ratio']:.3f}; "
          f"get_pages events (bpftrace): cold {peer('events', 'cold')}, warm {peer('events', 'warm')}")
    print("\ncachestat printed:\n```\n" + cachestat_out.strip()[-1500:] + "\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
