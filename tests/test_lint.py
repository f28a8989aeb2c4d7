"""Lint and types as part of the suite, so CI runs them with the tests: ruff (pycodestyle,
pyflakes, import sorting, pyupgrade, bugbear) and mypy on every package. Both read
their settings from pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing():
    proc = _run("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_mypy_checks_every_package_clean(tmp_path):
    proc = _run("mypy", "--cache-dir", str(tmp_path / "mypy"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues found" in proc.stdout
