"""Python workloads for the end-to-end tests, the BPF tests and the benchmarks; run by whichever
interpreter is being tested.

    split SECONDS            60/30/10 of its CPU time in hot_a/hot_b/hot_c, reached through via_a/via_b/via_c
    threads SECONDS          two threads: sum_squares (Python code) and digest (hashlib's C code)
    thread_churn SECONDS     a new thread every 0.2 s, each running churn_worker until it exits
    generators SECONDS       half in a generator (produce, consumed by consume), half in an asyncio
                             coroutine (crunch)
    recurse SECONDS DEPTH    recurse() DEPTH frames deep, burning CPU in the deepest one
    extension SECONDS        call_ext() calling the C extension pw_ext (PYTHONPATH must reach it)
    work ROUNDS              a fixed amount of CPU work (spin); prints elapsed_ns and cpu_ns
    idle                     waits until its stdin closes
    reuse                    makes a code object ("first"), then at each stdin line frees it and makes
                             another ("second") at the same address, and says so ("reused 1")

Before working, each mode prints "code.NAME 0xADDRESS" for its functions' code objects (CPython's
id() is the address), what hot_a's code object's tag is made of ("hot_a.FIELD 0xVALUE"), the
address of the code type, and "ready", so tests can check what the profiler recorded and read.
"""
import sys
import time


def spin(iterations):
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def burn(cpu_seconds):
    # Thread CPU time, so the split holds however the scheduler treats the process.
    until = time.thread_time() + cpu_seconds
    while time.thread_time() < until:
        spin(20)  # fine-grained: under emulation spin(2000) alone outlasts hot_c's 1 ms


def hot_a():
    burn(0.006)


def hot_b():
    burn(0.003)


def hot_c():
    burn(0.001)


def via_a():
    hot_a()


def via_b():
    hot_b()


def via_c():
    hot_c()


def split(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        via_a()
        via_b()
        via_c()


def sum_squares(end):
    while time.monotonic() < end:
        spin(20000)


def digest(end):
    import hashlib
    block = b"x" * (1 << 20)
    while time.monotonic() < end:
        hashlib.sha256(block).digest()


def threads(seconds):
    import threading
    end = time.monotonic() + seconds
    workers = [threading.Thread(target=sum_squares, args=(end,)), threading.Thread(target=digest, args=(end,))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def churn_worker(end):
    while time.monotonic() < end:
        spin(20000)


def thread_churn(seconds):
    import threading
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        worker = threading.Thread(target=churn_worker, args=(min(end, time.monotonic() + 0.2),))
        worker.start()
        worker.join()


def produce(n):
    for i in range(n):
        burn(0.001)
        yield i


def consume(end):
    total = 0
    while time.monotonic() < end:
        for value in produce(5):
            total += value
    return total


async def crunch(end):
    import asyncio
    while time.monotonic() < end:
        burn(0.001)
        await asyncio.sleep(0)


def generators(seconds):
    import asyncio
    consume(time.monotonic() + seconds / 2)
    asyncio.run(crunch(time.monotonic() + seconds / 2))


def recurse(depth, end):
    if depth > 1:
        return recurse(depth - 1, end)
    while time.monotonic() < end:
        spin(20000)


def call_ext(seconds):
    import pw_ext
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pw_ext.spin(2000000)


def work(rounds):
    start, cpu_start = time.monotonic_ns(), time.process_time_ns()
    for _ in range(rounds):
        spin(100000)
    print("elapsed_ns", time.monotonic_ns() - start)
    print("cpu_ns", time.process_time_ns() - cpu_start, flush=True)


def describe(prefix, code):
    """What a code object's tag is made of (see probes/pystack.h), and its address."""
    for field, value in (("code", id(code)), ("firstlineno", code.co_firstlineno), ("filename", id(code.co_filename)),
                         ("name", id(code.co_name)), ("linetable", id(code.co_linetable))):
        print(f"{prefix}.{field} {value:#x}")


def make_code(name, line):
    namespace = {}
    exec(compile("\n" * line + f"def {name}():\n    return 1\n", "generated.py", "exec"), namespace)
    return namespace[name].__code__


def reuse():
    first = make_code("first", 10)
    describe("first", first)
    print("ready", flush=True)
    sys.stdin.readline()
    address = id(first)
    del first
    for attempt in range(1000):
        second = make_code("second", 20)
        if id(second) == address:
            break
    describe("second", second)
    print("reused", 1 if id(second) == address else 0)
    print("ready", flush=True)
    sys.stdin.read()


def main(argv):
    codes = {"<module>": sys._getframe(1).f_code, "main": main.__code__}
    codes.update({f.__name__: f.__code__ for f in (spin, burn, hot_a, hot_b, hot_c, via_a, via_b, via_c, split,
                                                     recurse, sum_squares, churn_worker, call_ext)})
    for name, code in codes.items():
        print(f"code.{name} {id(code):#x}")
    describe("hot_a", hot_a.__code__)
    print(f"code_type {id(type(main.__code__)):#x}")
    if argv[1] == "reuse":
        return reuse()
    print("ready", flush=True)
    mode = argv[1]
    if mode == "split":
        split(float(argv[2]))
    elif mode == "threads":
        threads(float(argv[2]))
    elif mode == "thread_churn":
        thread_churn(float(argv[2]))
    elif mode == "generators":
        generators(float(argv[2]))
    elif mode == "recurse":
        sys.setrecursionlimit(10000)
        recurse(int(argv[3]), time.monotonic() + float(argv[2]))
    elif mode == "extension":
        call_ext(float(argv[2]))
    elif mode == "work":
        work(int(argv[2]))
    elif mode == "idle":
        sys.stdin.read()
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
