"""The system programs the test suite uses, with the Debian package that provides each: one
table for the install step (``make test`` and ``.ci/run`` both run this file) and for the
tests, which skip with the package's name when its program is missing.

Run as a script (``python3 tests/system_packages.py``, stdlib only, before any venv
exists): installs the missing packages with apt-get when run as root, otherwise prints one
line naming them and the ``sudo`` command, and always exits 0 so that the suite runs on
what the machine has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

SKIP_PREFIX = "needs the system package"


@dataclass(frozen=True)
class Need:
    """One program the tests run and the Debian package that provides it."""

    program: str
    package: str
    why: str


NEEDS = (
    Need("dovecot", "dovecot-imapd", "a real IMAP server for the sync tests"),
    Need("mbsync", "isync", "bench/sync.py's reference, smoke-tested"),
    Need("tmux", "tmux", "the real app in a terminal, killed mid-training"),
    Need("curl", "curl", "the user's browser in the Gmail OAuth test"),
)


def missing() -> list[Need]:
    """The needs whose program is not on PATH."""
    return [need for need in NEEDS if shutil.which(need.program) is None]


def require(program: str) -> None:
    """Skip the calling test, naming the package, when ``program`` is not installed.

    Raises ``pytest.skip.Exception`` (the skip) when missing; KeyError for a program
    not in ``NEEDS``.
    """
    need = {n.program: n for n in NEEDS}[program]
    if shutil.which(program) is None:
        import pytest

        pytest.skip(f"{SKIP_PREFIX} {need.package} ({need.why}); make test installs it")


def install() -> int:
    """Install what is missing where that is possible; print one line where it is not."""
    todo = missing()
    if not todo:
        return 0
    packages = " ".join(need.package for need in todo)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        how = f"sudo apt-get install {packages}" if shutil.which("apt-get") else packages
        print(f"not installed: {packages}; their tests will skip. To run them: {how}")
        return 0
    print(f"installing the test suite's system packages: {packages}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *packages.split()],
    ):
        done = subprocess.run(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"could not install {packages} ({last}); their tests will skip")
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(install())
