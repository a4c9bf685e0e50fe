#!/usr/bin/env python3
"""Writes the seed inputs of the pool fuzz target (fuzz/fuzz_pool.c) into this folder.

    python3 corpus/pool/make_seeds.py          # rewrites corpus/pool/*.bin

The input format is the one in fuzz/fuzz_pool.c's header comment; README.md says what each
seed exercises. Deterministic: the same files every time."""
import os

(SINGLE, BATCH, SINGLES, TREE, CHAIN, BURST_BATCH, BURST_SINGLES, BLOCKER, YIELDER, WAIT, SLEEP, YIELD,
 SHUTDOWN) = range(13)
OPS_MAX = 64
THREADS_CHOICES = 9

# single's argument: arg % 4 is the task's kind; (arg >> 2) its yields or blocked ms.
LEAF, YIELDING, BLOCKING, PARENT = range(4)


def single(kind, extra=0):
    return (SINGLE, kind | extra << 2)


def shutdown(next_threads, first=0, gap_yield=False):
    """first: 0 nothing, 1 yields, 2 a sleep, 3 a wait for everything, before the shutdown."""
    assert 0 <= next_threads < THREADS_CHOICES and 0 <= first < 4
    return (SHUTDOWN, first << 4 | (0x08 if gap_yield else 0) | next_threads)


# The world's decisions, from the first byte after the operations: the options stream first
# (strategy, which the target pins to random; pct depth; switch shift 1 + b % 7; spurious on
# b % 2; spurious shift 4 + b % 7), then one byte per scheduling point ("switch" when the
# value is the bound's last, i.e. odd for a bound of 2), and the fibers to switch to.
def decisions(shift, spurious, spurious_shift=0, pattern=b""):
    assert 1 <= shift <= 7
    return bytes([0, 0, shift - 1, 1 if spurious else 0, spurious_shift]) + pattern


def seed(threads, ops, decision_bytes=b""):
    assert 0 <= threads < THREADS_CHOICES and len(ops) <= OPS_MAX
    out = bytearray([threads, len(ops)])
    for op, arg in ops:
        assert 0 <= op < 13 and 0 <= arg < 256
        out += bytes([op, arg])
    return bytes(out + decision_bytes)


def seeds():
    out = {}
    # Tasks from outside: every kind of single task, a full batch of 256, 32 single schedules.
    out["outside"] = seed(4, [single(LEAF), single(YIELDING, 3), single(BLOCKING, 1), single(PARENT), (BATCH, 255),
                              (SINGLES, 31), (WAIT, 0), (BATCH, 7), (SINGLE, 0)])
    # From inside: a fan-out tree of depth 7 (255 tasks) and chains of single schedules.
    out["inside"] = seed(3, [(TREE, 7), (CHAIN, 63), (WAIT, 0), (TREE, 3), (CHAIN, 5), (TREE, 0)],
                         decisions(3, False))
    # Rings that overflow: a 328-task batch and 328 single pushes from inside, each awaited
    # before the next, on two threads; then a 638-task batch on one thread.
    out["bursts"] = seed(2, [(BURST_BATCH, 100), (WAIT, 0), (BURST_SINGLES, 200), (WAIT, 0),
                             shutdown(1, first=3), (BURST_BATCH, 255), (WAIT, 0)])
    # Stealing: workers blocked in virtual time while batches wait, 8 threads.
    out["stealing"] = seed(8, [(BLOCKER, 3), (BLOCKER, 0x1D), (BLOCKER, 2), (BLOCKER, 0x11), (BATCH, 255),
                               (TREE, 5), (WAIT, 0), (BLOCKER, 0xFF)], decisions(2, False, pattern=bytes(64)))
    # Shutdown with work in flight from outside and inside: the queues drain.
    out["shutdown-busy"] = seed(4, [(BATCH, 200), (TREE, 6), (CHAIN, 40), shutdown(2), (SINGLES, 20), (TREE, 4),
                                    shutdown(0, first=1, gap_yield=True), (BATCH, 63)])
    # Many pools in one run: 1, 2, 8 and the CPU count, shutdowns idle and busy.
    out["pools"] = seed(1, [(BATCH, 20), shutdown(2), (BATCH, 20), shutdown(8, first=2), (TREE, 4), shutdown(0),
                            (CHAIN, 10), shutdown(1, first=3), shutdown(3), (YIELD, 3)])
    # Idle workers woken again: the main fiber sleeps between schedules.
    out["idle"] = seed(4, [single(LEAF), (SLEEP, 0), single(LEAF), (SLEEP, 7), (BATCH, 15), (SLEEP, 2),
                           (SINGLES, 3), (SLEEP, 1), (WAIT, 0)])
    # Yields: tasks that yield while others steal, and a main fiber that yields.
    out["yields"] = seed(4, [(YIELDER, 15), (YIELDER, 3), (YIELD, 15), (BATCH, 31), (YIELDER, 7), (YIELD, 1),
                             single(YIELDING, 15), (TREE, 2)])
    # The same operations as "inside", with a switch at every other scheduling point and
    # spurious wake-ups and weak-CAS failures at 1 in 16.
    out["inside-switchy"] = seed(3, [(TREE, 7), (CHAIN, 63), (WAIT, 0), (TREE, 3), (CHAIN, 5), (TREE, 0)],
                                 decisions(1, True, 0, bytes([1, 0, 1, 1, 0, 3, 1, 0] * 32)))
    # Nothing at all: a pool that never gets work is shut down (and an empty input).
    out["empty-pool"] = seed(0, [])
    out["empty-input"] = b""
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, data in seeds().items():
        with open(os.path.join(here, name + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
