"""The peers' one timing loop, so every peer reports the same fields as the
TypeScript harness (src/bench/harness.ts): the first call (cold: imports,
allocations, caches) timed alone, `warmup` untimed calls, then `repeats`
timed calls (at least one)."""
import statistics
import time


def time_calls(fn, repeats, warmup=0):
    """Times fn(); returns (first call's result, {median_s, first_s, min_s, repeats, samples_s})."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return result, {
        "median_s": statistics.median(samples),
        "first_s": first,
        "min_s": min(samples),
        "repeats": len(samples),
        "samples_s": samples,
    }
