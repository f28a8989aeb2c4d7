"""The ``panza`` command line: import, sync, playback, train, export, eval, draft, tui, demo.

The top layer, beside the Textual app (``panza_tui.tui``): each command is a thin shell over
``sync``, ``training`` and the core; errors derived from ``PanzaError`` are printed as one
line naming the cause (exit 2), never as a traceback. ``main`` assembles the commands.
"""

from panza_tui.cli.main import app, main

__all__ = ["app", "main"]
