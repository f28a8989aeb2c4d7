"""Panza TUI: a terminal email assistant that learns to write like its user.

Light on purpose: importing this package pulls in no torch, transformers or llama_cpp.
"""

__version__ = "0.1.0"
