"""An export as an Ollama model: a Modelfile beside the GGUF, registered with ``ollama create``
where the ``ollama`` binary is installed.

The Modelfile (https://github.com/ollama/ollama/blob/main/docs/modelfile.md) says ``FROM``
the merged GGUF, or ``FROM`` the base GGUF plus ``ADAPTER`` the LoRA GGUF. Its ``TEMPLATE`` is
Panza's own prompt (the model's chat template around the system preamble and the user turn,
``core.prompting``) written in Ollama's Go-template syntax, so a prompt typed into Ollama is
the one the adapter was trained on (without retrieved emails). ``stop`` parameters are the
model's turn ends; sampling parameters are ``[drafting]``'s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from panza_core import prompting
from panza_core.drafting import ModelChoice
from panza_core.errors import ModelError
from panza_core.llama import PENALTY_LAST_N
from panza_core.workspace import Workspace

_SYSTEM, _PROMPT = "\x00PANZA-SYSTEM\x00", "\x00PANZA-PROMPT\x00"
_NAME = re.compile(r"(?:[\w.-]+/)?[A-Za-z0-9][\w.-]*(?::[\w.-]+)?")


def check_name(name: str) -> None:
    """Raise ``ModelError`` unless ``name`` is an Ollama name: ``[namespace/]model[:tag]``."""
    if not _NAME.fullmatch(name):
        raise ModelError(
            f"{name!r} is not an Ollama model name: letters, digits, '.', '_' and '-', "
            "optionally namespace/ and :tag (for example panza-me:latest)"
        )


def go_template(chat_template: str, preamble: str, turn_end: str) -> str:
    """Panza's single-turn prompt as an Ollama template: ``{{ .System }}``, ``{{ .Prompt }}``
    (the instruction) and ``{{ .Response }}`` closed by ``turn_end``."""
    text = prompting.build(chat_template, _SYSTEM, _PROMPT, preamble=preamble)
    text = text.replace("{{", '{{ "{{" }}')  # literal braces in a template are rare; keep them
    text = text.replace(_SYSTEM, "{{ .System }}").replace(_PROMPT, "{{ .Prompt }}")
    return f"{text}{{{{ .Response }}}}{turn_end}"


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ModelError('the prompt contains """, which an Ollama Modelfile cannot quote')
    return f'"""{text}"""'


def modelfile(ws: Workspace, choice: ModelChoice) -> str:
    """The Modelfile text for drafting with ``choice`` (merged GGUF, or base + adapter)."""
    d = ws.config.drafting
    lines = [f"FROM {choice.path}"]
    if choice.lora is not None:
        lines.append(f"ADAPTER {choice.lora}")
    turn_end = ws.stops[0] if ws.stops else ""
    template = go_template(ws.chat_template, ws.config.prompt.user_preamble, turn_end)
    lines += [f"TEMPLATE {_quoted(template)}", f"SYSTEM {_quoted(ws.config.prompt.system)}"]
    parameters = {
        "temperature": d.temperature, "top_p": d.top_p, "num_predict": d.max_tokens,
        "num_ctx": d.n_ctx, "seed": d.seed, "repeat_penalty": d.repeat_penalty,
        "repeat_last_n": PENALTY_LAST_N,
    }  # fmt: skip
    lines += [f"PARAMETER {key} {value}" for key, value in parameters.items()]
    lines += [f'PARAMETER stop "{stop}"' for stop in ws.stops]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class OllamaResult:
    """Where the Modelfile was written and whether ``ollama create`` registered ``name``."""

    modelfile: Path
    name: str
    registered: bool
    message: str


def export(ws: Workspace, choice: ModelChoice, folder: Path, name: str) -> OllamaResult:
    """Write ``folder/Modelfile`` and register it as ``name`` if ``ollama`` is on PATH.

    Raises ``ModelError`` with ollama's own reason when ``ollama create`` fails (its server
    not running, an architecture it cannot load).
    """
    path = folder / "Modelfile"
    path.write_text(modelfile(ws, choice), encoding="utf-8")
    binary = shutil.which("ollama")
    if binary is None:
        return OllamaResult(path, name, False, (
            f"ollama is not installed here: wrote {path}; register it where ollama runs with "
            f"'ollama create {name} -f {path}'"
        ))  # fmt: skip
    done = subprocess.run(
        [binary, "create", name, "-f", str(path)], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise ModelError(
            f"'ollama create {name}' failed ({why[-1] if why else f'exit {done.returncode}'}); "
            f"is 'ollama serve' running? The Modelfile is {path}"
        )
    return OllamaResult(path, name, True, f"registered as {name}: run 'ollama run {name}'")
