"""A model named by its Hugging Face id, fetched from a local stand-in of the Hub (HF_ENDPOINT):
downloaded once with progress and resumed after a dropped connection, then used from the
cache (also offline), listed by ``panza models``; offline, gated, unknown and private
models each give one line. Every command runs as the user runs it, in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared
from tests.hub_standin import HubStandIn

pytestmark = pytest.mark.slow

REPO = "panza-test/tiny-qwen2"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from tests import tiny_models

    return tiny_models.build("qwen2", tmp_path_factory.mktemp("tiny") / "model")


def panza(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panza_tui", *args], capture_output=True, text=True,
        timeout=300, env={**os.environ, **env},
    )  # fmt: skip


def test_downloads_once_resumes_and_then_works_from_the_cache(tiny, home, tmp_path):
    hf = {"HF_HOME": str(tmp_path / "hf"), "COLUMNS": "200"}
    files = sorted(p.name for p in tiny.iterdir())
    with HubStandIn({REPO: tiny}, cut_once=("model.safetensors",)) as hub:
        env = {**hf, "HF_ENDPOINT": hub.url}
        first = panza("models", "pull", REPO, env=env)
        if first.returncode != 0:  # the dropped connection ended the first try
            last = first.stderr.strip().splitlines()[-1]
            assert last.startswith("error:") and "Traceback" not in first.stderr, first.stderr
            first = panza("models", "pull", REPO, env=env)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "Fetching" in first.stderr  # huggingface_hub's progress bar
        commit = hub.commits[REPO]
        assert f"{REPO}@{commit}" in first.stderr
        assert f'[models] llm = "{REPO}"' in " ".join(first.stderr.split())
        # The cut file was resumed from where it stopped, not started over.
        assert [name for name, start in hub.ranges if start > 0] == ["model.safetensors"]
        assert sorted(set(hub.downloads)) == files
        snapshot = tmp_path / "hf" / "hub" / "models--panza-test--tiny-qwen2" / "snapshots" / commit
        assert (snapshot / "model.safetensors").read_bytes() == (
            tiny / "model.safetensors"
        ).read_bytes()

        # [models] llm = the id: resolved from the cache, nothing downloaded again.
        sent = len(hub.downloads)
        again = panza("doctor", env={**env, "PANZA_MODELS__LLM": REPO})
        assert again.returncode == 0, again.stderr[-2000:]
        assert len(hub.downloads) == sent
    # With the Hub gone, and with HF_HUB_OFFLINE, the cached model still resolves.
    for extra in ({"HF_ENDPOINT": "http://127.0.0.1:9"}, {"HF_HUB_OFFLINE": "1"}):
        code = f"from panza_core import models; print(models.resolve_llm({REPO!r}).source)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
            env={**os.environ, **hf, **extra},
        )  # fmt: skip
        assert out.stdout.strip() == f"{REPO}@{commit}", out.stderr[-2000:]
    listed = panza("models", env=hf)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if REPO in line)
    cells = [cell.strip() for cell in row.split("│")]
    size = sum(p.stat().st_size for p in tiny.iterdir()) / 2**20
    assert cells[1:3] == ["hub", REPO] and cells[3] == f"{size:.1f} MiB", row

    # Playback and one training step on it, offline; the run names the commit it tuned.
    mail = tmp_path / "mail.jsonl"
    lines = shared("panza", "david.jsonl").read_text(encoding="utf-8").splitlines()[:10]
    mail.write_text("\n".join(lines) + "\n", encoding="utf-8")
    offline = {**hf, "HF_HUB_OFFLINE": "1", "PANZA_PLAYBACK__MAX_TOKENS": "8"}
    for args, extra in (
        (("import", str(mail), "--account", "t"), {}),
        (("playback", "--account", "t", "--limit", "4"), {"PANZA_MODELS__LLM": REPO}),
        (("train", "--account", "t", "--base", REPO, "--max-steps", "1"), {}),
    ):
        step = panza(*args, env={**offline, **extra})
        assert step.returncode == 0, step.stderr[-2000:]
    assert f"lora on {REPO}@{commit}, 1 steps" in " ".join(step.stderr.split())


@pytest.mark.parametrize(
    ("spec", "extra", "says"),
    [
        ("panza-test/gated", {}, "is gated: accept its terms at"),
        ("panza-test/gated", {"HF_TOKEN": "hf_standin"}, "your token has no access yet"),
        ("panza-test/absent", {}, "no such model on the Hub or private"),
        (f"{REPO}@v9", {}, "has no revision 'v9'"),
        (REPO, {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        (REPO, {"HF_ENDPOINT": "http://127.0.0.1:9"}, "cannot reach the Hugging Face Hub"),
    ],
)
def test_a_model_that_cannot_be_had_is_one_line(tiny, home, tmp_path, spec, extra, says):
    with HubStandIn({REPO: tiny}, gated=("panza-test/gated",)) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url, "COLUMNS": "300", **extra}
        # Through [models] llm, as a user who set it in config.toml meets it.
        result = panza("doctor", env={**env, "PANZA_MODELS__LLM": spec})
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.strip().count("\n") == 0, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
