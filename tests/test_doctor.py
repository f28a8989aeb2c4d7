"""``panza doctor`` and the once-per-install llama.cpp check: a crash in the child becomes one
readable line and a non-zero exit, never a core dump in the user's face."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from panza_core import selfcheck
from panza_core.errors import BackendError
from panza_tui import cli
from panza_tui.cli import output


def _dying_child(sig: signal.Signals):
    """A child that dies of ``sig`` as a broken llama.cpp would, before printing anything."""
    code = f"import os, signal; os.kill(os.getpid(), signal.{sig.name})"
    return lambda model, lora=None: [sys.executable, "-c", code]


@pytest.mark.parametrize("sig", [signal.SIGILL, signal.SIGSEGV])
def test_a_child_killed_by_a_signal_is_named_with_the_fix(sig, monkeypatch, tmp_path):
    monkeypatch.setattr(selfcheck, "child_command", _dying_child(sig))
    result = selfcheck.run(tmp_path / "model.gguf")
    assert not result.ok and result.signal == sig
    assert sig.name in result.message and "make clean install" in result.message
    assert "\n" not in result.message


def test_doctor_exits_non_zero_with_one_line_for_a_crashing_build(home, monkeypatch):
    monkeypatch.setattr(selfcheck, "child_command", _dying_child(signal.SIGILL))
    result = CliRunner().invoke(cli.app, ["doctor"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "model check" in line]
    assert len(lines) == 1 and "fail" in lines[0], result.output
    assert "SIGILL" in result.output and "illegal instruction" in result.output
    assert "Traceback" not in result.output


def test_doctor_reports_this_machine_and_a_real_decode(home):
    proc = subprocess.run(
        [sys.executable, "-m", "panza_tui", "doctor"], capture_output=True, text=True, timeout=300
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    check = next(line for line in out.splitlines() if "model check" in line)
    assert check.split()[0] == "ok" and "decoded 8 tokens" in check, check
    for topic in ("llama.cpp", "threads", "gpu", "keyring", "PANZA_HOME", "disk", "embedded llm"):
        assert topic in out, f"{topic} missing from:\n{out}"
    assert str(home) in out


def test_demo_and_tui_check_once_per_install_and_stop_cleanly_on_a_crash(home, monkeypatch, capsys):
    calls = []
    real_run = selfcheck.run
    monkeypatch.setattr(selfcheck, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    from panza_core.workspace import Workspace

    output.check_llama_once(Workspace())
    output.check_llama_once(Workspace())
    assert len(calls) == 1  # the stamp of a passed check is kept

    monkeypatch.setenv("PANZA_HOME", str(home.parent / "other-home"))  # a fresh install's cache
    monkeypatch.setenv("PANZA_CACHE", str(home.parent / "other-cache"))
    monkeypatch.setattr(selfcheck, "child_command", _dying_child(signal.SIGILL))
    with pytest.raises(BackendError, match="SIGILL"):
        output.check_llama_once(Workspace())
    monkeypatch.setattr(sys, "argv", ["panza", "tui"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "SIGILL" in err and "Traceback" not in err


def test_a_corrupt_model_is_one_line_naming_the_file(tmp_path):
    broken = tmp_path / "model.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # a truncated download
    result = selfcheck.run(broken)
    assert not result.ok and result.signal is None
    assert result.message.startswith("llama.cpp could not load") and str(broken) in result.message
    assert "\n" not in result.message
