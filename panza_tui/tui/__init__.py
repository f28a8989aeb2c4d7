"""The top layer's Textual app: screens and widgets over the core, ``sync`` and ``training``."""
