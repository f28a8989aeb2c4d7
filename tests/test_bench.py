"""Smoke runs of the benchmark scripts: tiny input, one run, no timing asserted, so that a
refactor cannot silently break them. Each must print its table and write its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.system_packages import require


def _bench(script: str, *args: str, results, home, timeout: int = 600, **env_extra) -> None:
    env = {
        **os.environ,
        "PANZA_BENCH_RESULTS": str(results),
        "PANZA_CACHE": os.environ["PANZA_CACHE"],  # the session's: the base is dequantized once
        **env_extra,
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
           "--typing-cps", "100", "--instructions", "1", results=tmp_path, home=home)  # fmt: skip
    data = json.loads((tmp_path / "smoke.json").read_text())
    pipelines = [row["pipeline"] for row in data["rows"]]
    assert pipelines == ["raw llama-cpp-python", "panza Drafter.draft", "ratio (panza / raw)"]
    paths = [row["path"] for row in data["first_token"]]
    assert paths[0] == "cold" and paths[-1] == "regenerate" and len(paths) == 4
    assert all(row["first_token_ms"] > 0 for row in data["first_token"])
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


@pytest.mark.slow
def test_bench_playback_runs_once(home, tmp_path):
    _bench("playback.py", "--emails", "3", "--batches", "2", "--max-tokens", "6",
           results=tmp_path, home=home)  # fmt: skip
    data = json.loads((tmp_path / "playback.json").read_text())
    assert [row["loop"] for row in data["rows"]] == ["one at a time", "batched x2"]
    assert data["emails"] == 3 and all(row["emails_per_min"] > 0 for row in data["rows"])


@pytest.mark.slow
def test_bench_retrieval_runs_once(home, tmp_path):
    _bench("retrieval.py", "--emails", "300", "--distinct", "40", "--queries", "1",
           results=tmp_path, home=home)  # fmt: skip
    data = json.loads((tmp_path / "retrieval.json").read_text())
    assert data["emails"] == 300 and data["distinct_texts"] == 40 and data["queries"] == 6
    assert [row["embed+search"] for row in data["rows"]][:2] == ["panza", "raw"]
    assert data["index_build_s"] > 0 and data["index_load_s"] > 0


# The training benchmarks' smokes run on the tiny Llama: they check the script's plumbing, and
# the embedded model's training is tested in tests/training.
@pytest.mark.slow
def test_bench_train_runs_once(home, tmp_path, tiny_llama):
    _bench("train.py", "--methods", "lora", "--playback-limit", "4", results=tmp_path,
           home=home, PANZA_TRAINING__MAX_STEPS="1", PANZA_TRAINING__BATCH_SIZE="2",
           PANZA_MODELS__LLM=str(tiny_llama), PANZA_PLAYBACK__MAX_TOKENS="8")  # fmt: skip
    data = json.loads((tmp_path / "train.json").read_text())
    assert set(data["results"]) == {"panza:lora", "plain"}  # NF4: tests/training/test_quantized
    assert all(r["steps"] == 1 for r in data["results"].values())


def test_bench_sync_runs_once(home, tmp_path):
    require("mbsync")
    _bench("sync.py", "--messages", "30", results=tmp_path, home=home)
    data = json.loads((tmp_path / "sync.json").read_text())
    counts = {row["sync"]: row["messages"] for row in data["rows"]}
    assert counts["mbsync (isync) -> maildir"] == counts["panza full sync -> store"] == 30


@pytest.mark.slow
def test_bench_pipeline_runs_once(home, tmp_path, tiny_llama):
    _bench("pipeline.py", "--playback-limit", "3", "--compare-steps", "1", results=tmp_path,
           home=home, PANZA_TRAINING__MAX_STEPS="1", PANZA_TRAINING__BATCH_SIZE="2",
           PANZA_MODELS__LLM=str(tiny_llama), PANZA_PLAYBACK__MAX_TOKENS="8")  # fmt: skip
    rows = json.loads((tmp_path / "pipeline.json").read_text())["rows"]
    assert (rows[0]["phase"], rows[0]["size"]) == ("playback", "3 emails")


@pytest.mark.slow
def test_bench_repetition_runs_once(home, tmp_path, tiny_llama):
    _bench("repetition.py", "--users", "david", "--penalties", "1.0,1.3", "--playback-limit",
           "6", "--limit", "1", results=tmp_path, home=home, PANZA_TRAINING__MAX_STEPS="1",
           PANZA_TRAINING__BATCH_SIZE="2", PANZA_EVALUATION__MAX_TOKENS="16",
           PANZA_MODELS__LLM=str(tiny_llama), PANZA_PLAYBACK__MAX_TOKENS="8")  # fmt: skip
    rows = json.loads((tmp_path / "repetition.json").read_text())["rows"]
    assert [(r["user"], r["repeat_penalty"]) for r in rows] == [("david", 1.0), ("david", 1.3)]
    assert all(0 <= r["repeat6 %"] <= 100 and r["median words"] > 0 for r in rows)


@pytest.mark.slow
def test_bench_fidelity_runs_once(home, tmp_path, tiny_llama):
    env = dict(results=tmp_path, home=home, PANZA_TRAINING__MAX_STEPS="1",
               PANZA_TRAINING__BATCH_SIZE="2", PANZA_EVALUATION__MAX_TOKENS="16",
               PANZA_MODELS__LLM=str(tiny_llama), PANZA_PLAYBACK__MAX_TOKENS="8")  # fmt: skip
    _bench("fidelity.py", "--users", "david", "--playback-limit", "6", "--limit", "1", **env)
    first = tmp_path / "first.json"
    (tmp_path / "fidelity.json").rename(first)
    _bench("fidelity.py", "--users", "david", "--playback-limit", "6", "--limit", "1",
           "--compare", str(first), "--label", "again", **env)  # fmt: skip
    data = json.loads((tmp_path / "fidelity.json").read_text())
    rows = {r["setting"]: r for r in data["rows"]}
    assert data["label"] == "again" and {"base", "finetuned+rag", "real emails"} <= set(rows)
    assert all(0 <= r["facts"] <= 1 and r["invented"] >= 0 for r in rows.values())
    assert rows["base"]["change facts"] == 0.0  # greedy drafts, the same twice on one host


@pytest.mark.slow
def test_bench_faults_runs_once(home, tmp_path):
    require("dovecot")
    _bench("faults.py", "--kills", "1", "--steps", "import,imap", "--messages", "20",
           results=tmp_path, home=home)  # fmt: skip
    data = json.loads((tmp_path / "faults.json").read_text())
    assert [row["step"] for row in data["rows"]] == ["import", "imap"]
    assert all(row["kills"] == 1 and row["emails lost"] == 0 for row in data["rows"])


def test_bench_headers_runs_once(home, tmp_path):
    _bench("headers.py", "--sizes", "0.01", "--runs", "1", results=tmp_path, home=home)
    data = json.loads((tmp_path / "headers.json").read_text())
    assert [row["shape"] for row in data["rows"]] == ["words", "split", "unknown"]
    assert all(row["same text"] == "yes" for row in data["rows"])


def test_bench_suite_runs_once(tmp_path):
    env = {**os.environ, "PANZA_BENCH_RESULTS": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "suite.py"), "--top", "1", "--",
         "tests/test_system_packages.py"],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "suite.json").read_text())
    assert data["tests"] == 2 and data["failures"] == 0 and data["wall_s"] > 0
    assert [row["test"] for row in data["rows"]][-1] == "total of 2 tests"
    assert data["rows"][0]["test"].startswith("tests.test_system_packages::test_")
