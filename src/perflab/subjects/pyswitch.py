"""perflab subject: Python-level switches and tasks, run as ``python pyswitch.py --variant=...``.

Shipped as package data and run with the interpreter perflab runs under
(sys.executable): the one place where a Python-level timing is the point, because what
is measured is the cost of Python's own constructs. It speaks the kernel protocol
(docs/kernels.md): ``--key=value`` options, one JSON line on stdout, exit 77 with a
one-line reason when something cannot run here. Standard library only.

Timing variants (a calibrated batch protocol like common.h's, with time.perf_counter_ns):

* ``asyncio``: two tasks that each ``await asyncio.sleep(0)`` in a loop; ``sleep(0)``
  yields a bare ``None`` to the task's step function, which reschedules the task with
  ``loop.call_soon`` (Lib/asyncio/tasks.py ``__sleep0``, ``Task.__step``), so every await
  is one task switch: this task stops, the event loop runs the next ready one.
* ``generator``: two generators resumed in turn with ``next()``; one resumption (the
  generator runs until its next ``yield``) is one switch.
* ``thread``: two threads of this process, pinned to one CPU, handing a token back and
  forth through two ``threading.Lock`` objects (futex-based semaphores in CPython,
  Python/thread_pthread.h) and the GIL; a hand-off is half a round trip.
* ``dict-lookup``: ``d[key]`` in a 1,000-entry dict of str keys: an in-process cache hit.

Each timed batch runs ``iters`` operations; the cost of an empty loop of the same shape,
calibrated the same way, is subtracted per operation (``loop_overhead_ns``).

Subject variant ``asyncio-tasks --n=N``: counts this process's kernel tasks in
/proc/self/task before and while N asyncio tasks are blocked on futures, then starts 4
threads as a positive control of the count.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

MAX_ITERS = 1 << 30
CONTROL_THREADS = 4


def fail(code: int, message: str) -> None:
    print(f"pyswitch: {message}", file=sys.stderr)
    sys.exit(code)


def parse(argv: list[str]) -> dict:
    opts = {"variant": None, "cpu": -1, "target-ns": 1_000_000, "batches": 5, "n": 10_000}
    for a in argv:
        key, sep, value = a[2:].partition("=") if a.startswith("--") else ("", "", "")
        if not sep or key not in opts:
            fail(2, f"expected --key=value with a known key, got {a!r}")
        if key == "variant":
            opts[key] = value
            continue
        try:
            opts[key] = int(value)
        except ValueError:
            fail(2, f"--{key} must be an integer, got {value!r}")
    if opts["variant"] not in VARIANTS:
        fail(2, f"--variant must be one of {', '.join(VARIANTS)}")
    if not 1 <= opts["batches"] <= 1000 or not 1000 <= opts["target-ns"] <= 60_000_000_000:
        fail(2, "--batches must be in [1, 1000] and --target-ns in [1000, 6e10]")
    return opts


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL) as the C kernels do (best effort)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def pin(cpu: int) -> int:
    """sched_setaffinity(2) on the calling thread; threads started later inherit it."""
    if cpu < 0:
        return -1
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        fail(77, f"cannot pin to cpu {cpu}: {exc.strerror}")
    return cpu


# ---- the batch protocol --------------------------------------------------------------
now = time.perf_counter_ns


def median(values) -> float:
    v = sorted(values)
    n = len(v)
    return float(v[n // 2]) if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def timer_overhead() -> float:
    for _ in range(1000):
        now()
    deltas = []
    for _ in range(10001):
        t0 = now()
        deltas.append(now() - t0)
    return median(deltas)


def calibrate(batch, target: int) -> int:
    batch(1)  # cold: not a sample
    it = 1
    while it < MAX_ITERS and batch(it) < target:
        it *= 2
    return it


def measure(batch, empty, opts) -> dict:
    # The cyclic garbage collector runs at allocation-count thresholds, inside some
    # batches and not others; it is off while timing, as timeit does (Lib/timeit.py).
    import gc

    gc.collect()
    gc.disable()
    try:
        return _measure(batch, empty, opts)
    finally:
        gc.enable()


def _measure(batch, empty, opts) -> dict:
    timer = timer_overhead()
    target, nb = opts["target-ns"], opts["batches"]
    eit = calibrate(empty, target)
    empty(eit)
    loop = median([(empty(eit) - timer) / eit for _ in range(nb)])
    iters = calibrate(batch, target)
    batch(iters)  # warm-up
    per_op = [(batch(iters) - timer) / iters - loop for _ in range(nb)]
    return {"iters": iters, "per_op_ns": per_op, "timer_overhead_ns": timer, "loop_overhead_ns": loop}


def empty_loop(iters: int) -> int:
    t0 = now()
    for _ in range(iters):
        pass
    return now() - t0


# ---- asyncio ---------------------------------------------------------------------------
def asyncio_switch(opts) -> dict:
    """Two tasks alternate; ``iters`` switches per batch (each task awaits iters/2 times)."""
    import asyncio

    async def worker(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def idle(n: int) -> None:
        for _ in range(n):
            pass

    loop = asyncio.new_event_loop()

    def batch(iters: int) -> int:
        half = max(1, iters // 2)
        a, b = worker(half), worker(iters - half if iters > 1 else 0)

        async def both():
            t0 = now()
            await asyncio.gather(a, b)
            return now() - t0

        return loop.run_until_complete(both())

    def empty(iters: int) -> int:
        # the same two loops with nothing awaited, in one task
        async def both():
            t0 = now()
            await idle(iters // 2)
            await idle(iters - iters // 2)
            return now() - t0

        return loop.run_until_complete(both())

    try:
        return {**measure(batch, empty, opts), "tasks": 2, "switch": "await asyncio.sleep(0)"}
    finally:
        loop.close()


# ---- generators ----------------------------------------------------------------------
def generator_switch(opts) -> dict:
    def gen():
        while True:
            yield

    a, b = gen(), gen()
    next(a), next(b)

    def batch(iters: int) -> int:
        half = iters // 2 + iters % 2
        na, nb_ = next, next
        t0 = now()
        for _ in range(half):
            na(a)
            nb_(b)
        return now() - t0

    def empty(iters: int) -> int:
        return empty_loop(iters // 2 + iters % 2)

    out = measure(batch, empty, opts)
    # an iteration resumes both generators: two switches; the loop cost is per iteration
    out["per_op_ns"] = [v / 2 for v in out["per_op_ns"]]
    out["switches_per_iter"] = 2
    out["generators"] = 2
    return out


# ---- threads -------------------------------------------------------------------------
def thread_handoff(opts) -> dict:
    mine, theirs = threading.Lock(), threading.Lock()
    mine.acquire()
    theirs.acquire()

    def partner():
        while True:
            theirs.acquire()
            mine.release()

    threading.Thread(target=partner, daemon=True).start()

    def batch(iters: int) -> int:
        t0 = now()
        for _ in range(iters):
            theirs.release()
            mine.acquire()
        return now() - t0

    out = measure(batch, empty_loop, opts)
    out["per_op_ns"] = [v / 2 for v in out["per_op_ns"]]  # a round trip is two hand-offs
    out["switches_per_iter"] = 2
    out["switch_interval_s"] = sys.getswitchinterval()
    return out


# ---- dict lookup ---------------------------------------------------------------------
def dict_lookup(opts) -> dict:
    d = {f"key-{i}": i for i in range(1000)}
    keys = list(d)[::37]  # 28 keys, cycled: the same lookups every batch
    k = len(keys)

    def batch(iters: int) -> int:  # an iteration looks up every key once
        t0 = now()
        for _ in range(iters):
            for key in keys:
                d[key]
        return now() - t0

    def empty(iters: int) -> int:
        t0 = now()
        for _ in range(iters):
            for key in keys:
                pass
        return now() - t0

    out = measure(batch, empty, opts)
    out["per_op_ns"] = [v / k for v in out["per_op_ns"]]
    out["lookups_per_iter"] = k
    out["dict_entries"] = len(d)
    return out


# ---- subject: asyncio tasks are not kernel tasks ---------------------------------------
def count_tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def asyncio_tasks(opts) -> dict:
    import asyncio

    n = opts["n"]
    before = count_tasks()

    async def blocked(fut) -> None:
        await fut

    async def main() -> dict:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        tasks = [asyncio.ensure_future(blocked(fut)) for _ in range(n)]
        await asyncio.sleep(0)  # every task runs to its await and blocks
        await asyncio.sleep(0)
        waiting = sum(1 for t in tasks if not t.done())
        during = []
        for _ in range(5):
            during.append(count_tasks())
            await asyncio.sleep(0.01)
        # positive control of the probe: real threads must show up in the same count
        release = threading.Event()
        threads = [threading.Thread(target=release.wait, daemon=True) for _ in range(CONTROL_THREADS)]
        for t in threads:
            t.start()
        with_threads = count_tasks()
        release.set()
        for t in threads:
            t.join()
        fut.set_result(None)
        await asyncio.gather(*tasks)
        return {
            "tasks_started": n,
            "tasks_blocked": waiting,
            "tasks_during": during,
            "control_threads_started": CONTROL_THREADS,
            "tasks_with_control_threads": with_threads,
        }

    out = asyncio.run(main())
    return {"tasks_before": before, "sample_interval_ms": 10, **out}


VARIANTS = {
    "asyncio": asyncio_switch,
    "generator": generator_switch,
    "thread": thread_handoff,
    "dict-lookup": dict_lookup,
    "asyncio-tasks": asyncio_tasks,
}


def main(argv: list[str]) -> int:
    opts = parse(argv)
    die_with_parent()
    cpu = pin(opts["cpu"])
    result = VARIANTS[opts["variant"]](opts)
    record = {"kernel": "pyswitch", "variant": opts["variant"], "cpu": cpu,
              "python": sys.version.split()[0], "implementation": sys.implementation.name, **result}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
