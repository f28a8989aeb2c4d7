"""The real app, in a terminal (tmux), killed with SIGKILL while its Model screen trains:
the run it leaves is continued by `panza train --resume` (issue 12). On the tiny Llama
(tests/conftest.py: what is checked does not depend on the weights), in a process that kills
itself after its first checkpoint (``killed_after_checkpoint``: the tiny model trains faster
than the test could watch for one)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT, shared
from tests.helpers import killed_after_checkpoint, until
from tests.system_packages import require

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def test_a_killed_app_leaves_a_training_run_that_resume_continues(
    home, tmp_path, monkeypatch, tiny_llama
):
    require("tmux")
    from panza_core.store import Store
    from panza_core.workspace import Workspace
    from sync.importer import import_path
    from training import finetune

    settings = {
        "PANZA_TRAINING__MAX_STEPS": "6", "PANZA_TRAINING__BATCH_SIZE": "2",
        "PANZA_TRAINING__CHECKPOINT_EVERY": "1", "PANZA_UI__CHECK_MAIL_EVERY": "0",
        "PANZA_MODELS__LLM": str(tiny_llama), "PANZA_PLAYBACK__MAX_TOKENS": "8",
    }  # fmt: skip
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    lines = shared("panza", "david.jsonl").read_text(encoding="utf-8").splitlines()[:10]
    data = tmp_path / "david10.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Store() as store:
        store.add_account("d")
        import_path(store, "d", data)

    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in os.environ.items()
                   if k.startswith(("PANZA_", "HF_")))  # fmt: skip
    code = shlex.quote(killed_after_checkpoint(1))
    command = f"cd {shlex.quote(str(ROOT))} && env {env} {sys.executable} -c {code} tui -a d"
    session = f"panza-killed-{os.getpid()}"
    _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "35", command)
    try:
        assert until(lambda: "Compose" in _tmux("capture-pane", "-p", "-t", session), 60)
        _tmux("send-keys", "-t", session, "m")
        assert until(lambda: "playback instruction" in _tmux("capture-pane", "-p", "-t", session),
                     30)  # fmt: skip
        pane = int(_tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])
        _tmux("send-keys", "-t", session, "g")
        assert until(lambda: not _alive(pane), 300), _tmux("capture-pane", "-p", "-t", session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    ws = Workspace()
    run = finetune.resumable(ws, "d")
    assert run is not None and run.status == "running"  # killed: nobody marked it
    resumed = subprocess.run(
        [sys.executable, "-m", "panza_tui", "train", "-a", "d", "--resume"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"run #{run.id} (resumed at step" in resumed.stderr
    assert ws.store.latest_run("d", "train").id == run.id
    ws.store.close()
