"""A newcomer's first run with no network: ``panza demo``, ``panza eval`` and a 4-bit
``panza train`` succeed with every non-loopback connection and name lookup refused
(``tests/offline/sitecustomize.py``, loaded by every Python process in the tree), ask the
Hugging Face Hub for nothing, load bitsandbytes only for the 4-bit run, and print no
library's warning or progress bar."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

GUARD = ROOT / "tests" / "offline"
# What the libraries print on their own: tqdm's bars, Python warnings, logging's default
# format, bitsandbytes asking for Hub kernels.
LEAKS = ("it/s]", "s/it]", "%|", "Warning:", "warnings.warn", "WARNING", "kernels-community",
         "Failed to load", "Traceback")  # fmt: skip


def _panza(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "panza_tui", *args], capture_output=True, text=True,
        timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


def test_the_first_run_is_offline_and_quiet(home, tmp_path):
    log = tmp_path / "network.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(GUARD), os.environ.get("PYTHONPATH")])),
        "PANZA_NETGUARD_LOG": str(log),
        "COLUMNS": "200",  # one line per message, so a leak is matched whole
        # the demo's own path on a few emails and one step: what a user's run imports
        "PANZA_TRAINING__MAX_EMAILS": "6", "PANZA_TRAINING__MAX_STEPS": "1",
        "PANZA_TRAINING__BATCH_SIZE": "2", "PANZA_DRAFTING__MAX_TOKENS": "16",
        "PANZA_EVALUATION__MAX_TOKENS": "16",
    }  # fmt: skip
    for name in (
        "TQDM_DISABLE",
        "HF_HUB_OFFLINE",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "USE_HUB_KERNELS",
    ):
        env.pop(name, None)  # as from a user's shell, not this test process's settings

    outputs = [_panza("demo", "--no-tui", env=env)]
    outputs.append(_panza("eval", "--account", "demo", "--limit", "1", env=env))
    assert "rouge" in outputs[-1].lower()  # the evaluation table was printed
    without_nf4 = log.read_text() if log.exists() else ""
    assert without_nf4 == ""  # no connection, no lookup, no bitsandbytes, no Hub kernels

    nf4 = {**env, "PANZA_TRAINING__QUANTIZE": "nf4"}
    outputs.append(_panza("train", "--account", "demo", "--force", env=nf4))
    records = log.read_text().splitlines() if log.exists() else []
    assert [r for r in records if " connect " in r or " lookup " in r] == []
    assert any(r.endswith("imported bitsandbytes") for r in records)  # let in for nf4 only

    for output in outputs:
        leaked = [line for line in output.splitlines() if any(leak in line for leak in LEAKS)]
        assert leaked == []
