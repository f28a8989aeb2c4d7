"""Fixtures of the app's pilot tests."""

from __future__ import annotations

import pytest

from panza_tui.cli.demo import ADDRESS, mailbox
from sync.importer import import_path


@pytest.fixture()
def demo_ws(workspace):
    """A workspace with the demo mailbox (Maya's 65 kept emails) as account "demo"."""
    workspace.store.add_account("demo", [ADDRESS])
    import_path(workspace.store, "demo", mailbox())
    return workspace
