"""The bottom layer: store, config, models, retrieval, llama.cpp and drafting.

Imports nothing above it (no ``sync``, ``training``, CLI or Textual); ``sync`` and
``training`` build on it, and the CLI and the app on all three.
"""
