"""The real app, in a terminal (tmux), killed with SIGKILL while its Model screen trains:
the run it leaves is continued by `panza train --resume` (issue 12)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, shared
from tests.helpers import until
from tests.system_packages import require

pytestmark = pytest.mark.slow


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def test_a_killed_app_leaves_a_training_run_that_resume_continues(home, tmp_path, monkeypatch):
    require("tmux")
    from panza_tui.core.store import Store
    from panza_tui.core.workspace import Workspace
    from sync.importer import import_path
    from training import finetune

    settings = {
        "PANZA_TRAINING__MAX_STEPS": "6", "PANZA_TRAINING__BATCH_SIZE": "2",
        "PANZA_TRAINING__CHECKPOINT_EVERY": "1", "PANZA_UI__CHECK_MAIL_EVERY": "0",
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
    command = f"cd {shlex.quote(str(ROOT))} && env {env} {sys.executable} -m panza_tui tui -a d"
    session = f"panza-killed-{os.getpid()}"
    _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "35", command)
    try:
        assert until(lambda: "Compose" in _tmux("capture-pane", "-p", "-t", session), 60)
        _tmux("send-keys", "-t", session, "m")
        assert until(lambda: "playback instruction" in _tmux("capture-pane", "-p", "-t", session),
                     30)  # fmt: skip
        _tmux("send-keys", "-t", session, "g")
        ws = Workspace()

        def checkpointed():
            run = finetune.resumable(ws, "d")
            return run if run is not None and run.status == "running" else None

        run = until(checkpointed, 300, every=0.5)
        assert run is not None, _tmux("capture-pane", "-p", "-t", session)
        pid = int(_tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])
        os.kill(pid, signal.SIGKILL)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    resumed = subprocess.run(
        [sys.executable, "-m", "panza_tui", "train", "-a", "d", "--resume"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"run #{run.id} (resumed at step" in resumed.stderr
    assert ws.store.latest_run("d", "train").id == run.id
    ws.store.close()
