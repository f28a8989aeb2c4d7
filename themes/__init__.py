"""Colour themes for the TUI, one TOML file each; every key is a ``textual.theme.Theme`` field.

Add a file here (or in ``$PANZA_HOME/themes``) and choose it with ``[ui] theme = "name"``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def load_themes(extra: Path | None = None) -> list[Any]:
    """Every theme in this folder and in ``extra``; raises ``ValueError`` naming a bad file."""
    from textual.theme import Theme

    themes = []
    folders = [HERE] + ([extra] if extra and extra.is_dir() else [])
    for folder in folders:
        for file in sorted(folder.glob("*.toml")):
            try:
                themes.append(Theme(**tomllib.loads(file.read_text(encoding="utf-8"))))
            except (tomllib.TOMLDecodeError, TypeError) as exc:
                raise ValueError(f"theme {file}: {exc}") from exc
    return themes
