"""Python workloads profiled by the end-to-end tests and the benchmarks (run by a given interpreter).

    python_workload.py split SECONDS      60/30/10 of the CPU in hot_a/hot_b/hot_c, via via_a/via_b/via_c
    python_workload.py threads SECONDS    two threads: sum_squares (Python) and digest (hashlib, in C)
    python_workload.py generators SECONDS a generator (produce, consumed by consume) and an asyncio coroutine (crunch)
    python_workload.py recurse SECONDS DEPTH   recurse() DEPTH deep, then spin()
    python_workload.py work ROUNDS        a fixed amount of CPU work; prints elapsed_ns
"""
import sys
import time

UNIT = 20000  # loop iterations per unit of work


def spin(units):
    total = 0
    for i in range(units * UNIT):
        total += i * i % 7
    return total


def hot_a():
    return spin(6)


def hot_b():
    return spin(3)


def hot_c():
    return spin(1)


def via_a():
    return hot_a()


def via_b():
    return hot_b()


def via_c():
    return hot_c()


def split(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        via_a()
        via_b()
        via_c()


def sum_squares(end):
    while time.monotonic() < end:
        spin(1)


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


def produce(n):
    for i in range(n):
        yield spin(1) + i


def consume(end):
    total = 0
    while time.monotonic() < end:
        for value in produce(5):
            total += value
    return total


async def crunch(end):
    import asyncio
    while time.monotonic() < end:
        spin(1)
        await asyncio.sleep(0)


def generators(seconds):
    import asyncio
    consume(time.monotonic() + seconds / 2)
    asyncio.run(crunch(time.monotonic() + seconds / 2))


def recurse(depth, end):
    if depth > 1:
        return recurse(depth - 1, end)
    while time.monotonic() < end:
        spin(1)


def work(rounds):
    start = time.monotonic_ns()
    for _ in range(rounds):
        via_a()
    print("elapsed_ns", time.monotonic_ns() - start)


def main(argv):
    mode = argv[1]
    if mode == "split":
        split(float(argv[2]))
    elif mode == "threads":
        threads(float(argv[2]))
    elif mode == "generators":
        generators(float(argv[2]))
    elif mode == "recurse":
        sys.setrecursionlimit(10000)
        recurse(int(argv[3]), time.monotonic() + float(argv[2]))
    elif mode == "work":
        work(int(argv[2]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
