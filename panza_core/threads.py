"""How many CPU threads the heavy libraries get.

On a small shared machine, two busy threads on two cores can run five times slower than one
(each thread waits on the other whenever a core is taken), so we leave one core free.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and cgroup pinning)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pick(configured: int = 0, reserve: int = 1) -> int:
    """``configured`` if > 0, else all available cores but ``reserve`` (at least 1, at most 8).

    Interactive work (drafting next to the TUI) keeps one core free; a batch job such as
    training, which owns the machine, passes ``reserve=0``.
    """
    if configured > 0:
        return configured
    return max(1, min(available_cores() - reserve, 8))
