"""The install step and the skip guard share one table of system packages."""

from __future__ import annotations

import shutil

import pytest

from tests import system_packages


def test_a_missing_program_skips_its_test_naming_the_package(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda program: None)
    with pytest.raises(pytest.skip.Exception, match="dovecot-imapd"):
        system_packages.require("dovecot")


def test_without_root_the_install_step_prints_one_line_with_the_sudo_command(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda p: "/usr/bin/apt-get" if p == "apt-get" else None)
    monkeypatch.setattr(system_packages.os, "geteuid", lambda: 1000)
    assert system_packages.install() == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("sudo apt-get install dovecot-imapd isync tmux curl")
