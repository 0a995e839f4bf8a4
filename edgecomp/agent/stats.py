"""Latency statistics over raw samples, without numpy (the board may lack it)."""

import math

from .protocol import LatencyStats


def percentile(sorted_values, fraction):
    """Linear interpolation between closest ranks (numpy's default), on sorted data."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low = int(math.floor(position))
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def latency_stats(samples):
    """p50/p90/p99/mean/std/count of samples in ms; std is the population std (ddof=0)."""
    ordered = sorted(samples)
    count = len(ordered)
    mean = sum(ordered) / count
    variance = sum((v - mean) ** 2 for v in ordered) / count
    return LatencyStats(p50=percentile(ordered, 0.5), p90=percentile(ordered, 0.9),
                        p99=percentile(ordered, 0.99), mean=mean, std=math.sqrt(variance),
                        count=count)
