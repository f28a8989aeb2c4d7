"""Helpers for the benchmarks: a temporary Panza home, timing statistics, table and JSON."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = Path(os.environ.get("PANZA_BENCH_RESULTS", ROOT / "bench" / "results"))
sys.path.insert(0, str(ROOT))


def temp_home(name: str) -> Path:
    """Point PANZA_HOME at a fresh temporary folder (the model cache is kept across runs)."""
    home = Path(tempfile.mkdtemp(prefix=f"panza-bench-{name}-"))
    os.environ["PANZA_HOME"] = str(home)
    os.environ.setdefault("PANZA_CACHE", str(Path(tempfile.gettempdir()) / "panza-bench-cache"))
    return home


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(name: str, columns: list[str], rows: list[list], extra: dict | None = None) -> None:
    """Print an aligned table and write ``bench/results/<name>.json``."""
    table(columns, rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"rows": [dict(zip(columns, row, strict=True)) for row in rows], **(extra or {})}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    print(f"\nwrote {RESULTS / f'{name}.json'}")


def table(columns: list[str], rows: list[list]) -> None:
    """Print an aligned table."""
    widths = [max(len(str(c)), *(len(_fmt(r[i])) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(_fmt(v).ljust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
