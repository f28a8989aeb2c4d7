"""Smoke runs of the benchmark scripts: tiny input, one run, no timing asserted, so that a
refactor cannot silently break them. Each must print its table and write its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _bench(script: str, *args: str, results, home, timeout: int = 600) -> None:
    env = {
        **os.environ,
        "PANZA_BENCH_RESULTS": str(results),
        "PANZA_CACHE": str(home.parent / "bench-cache"),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote" in proc.stdout


@pytest.mark.slow
def test_bench_draft_runs_once(home, tmp_path):
    _bench("draft.py", "--runs", "1", "--max-tokens", "4", "--name", "smoke",
           results=tmp_path, home=home)  # fmt: skip
    data = json.loads((tmp_path / "smoke.json").read_text())
    pipelines = [row["pipeline"] for row in data["rows"]]
    assert pipelines == ["raw llama-cpp-python", "panza Drafter.draft", "ratio (panza / raw)"]
    assert all(row["tokens_per_s"] > 0 for row in data["rows"][:2])
    assert data["llama_cpp_cpu_backend"]  # the portable build reports the variant it loaded


def test_bench_tui_start_runs_once(home, tmp_path):
    code = "import sys; sys.path.insert(0, 'bench'); import tui_start; tui_start.main(runs=1)"
    env = {**os.environ, "PANZA_BENCH_RESULTS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "tui_start.json").read_text())
    assert [row["process start to first paint"] for row in data["rows"]][:2] == [
        "panza app (65 emails)", "bare textual app",
    ]  # fmt: skip
