"""``panza export --ollama``: the Modelfile says what drafting does (prompt, stops, sampling),
and ``ollama create`` is run where an ``ollama`` binary is installed. The binary here is a
stand-in script that checks its arguments and the files the Modelfile names."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from panza_core.drafting import ModelChoice
from panza_core.errors import ModelError


def _parse(text: str) -> tuple[dict[str, list[str]], str, str]:
    """(instructions by keyword, TEMPLATE body, SYSTEM body) of a Modelfile."""
    bodies = text.split('"""')
    template, system = bodies[1], bodies[3]
    found: dict[str, list[str]] = {}
    for line in (bodies[0] + bodies[2] + bodies[4]).splitlines():
        if line.strip():
            key, _, value = line.partition(" ")
            found.setdefault(key, []).append(value)
    return found, template, system


def test_the_modelfile_prompts_and_stops_as_drafting_does(workspace):
    from panza_core import prompting
    from training import ollama

    ws = workspace.with_config(prompt={"user_preamble": "I am David."})
    adapter = ws.llm.path  # any existing file stands for the adapter here
    found, template, system = _parse(ollama.modelfile(ws, ModelChoice(ws.llm.path, adapter, "")))
    assert found["FROM"] == [str(ws.llm.path)] and found["ADAPTER"] == [str(adapter)]
    assert system == ws.config.prompt.system
    # Ollama fills {{ .System }} and {{ .Prompt }}: the text is Panza's own prompt, then the
    # reply, closed by the model's turn end (SmolLM2: <|im_end|>).
    filled = template.replace("{{ .System }}", "SYS").replace("{{ .Prompt }}", "Say hi")
    expected = prompting.build(ws.chat_template, "SYS", "Say hi", preamble="I am David.")
    assert filled == f"{expected}{{{{ .Response }}}}<|im_end|>"
    parameters = dict(p.split(" ", 1) for p in found["PARAMETER"] if not p.startswith("stop"))
    d = ws.config.drafting
    assert float(parameters["temperature"]) == d.temperature
    assert float(parameters["repeat_penalty"]) == d.repeat_penalty
    assert int(parameters["num_ctx"]) == d.n_ctx
    stops = [p.split(" ", 1)[1].strip('"') for p in found["PARAMETER"] if p.startswith("stop")]
    assert stops == ws.stops


def _fake_ollama(bin_dir: Path, exit_code: int = 0) -> Path:
    """An ``ollama`` that logs its arguments and, for ``create NAME -f FILE``, fails unless
    every FROM/ADAPTER file the Modelfile names exists."""
    log = bin_dir / "calls.log"
    script = bin_dir / "ollama"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
[ "$1" = create ] && [ "$3" = -f ] || exit 64
for f in $(sed -n 's/^\\(FROM\\|ADAPTER\\) //p' "$4"); do [ -f "$f" ] || exit 65; done
if [ {exit_code} -ne 0 ]; then
  echo "Error: could not connect to ollama app, is it running?" >&2
  exit {exit_code}
fi
echo "success"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def test_registers_with_ollama_or_says_where_the_modelfile_is(workspace, tmp_path, monkeypatch):
    from training import ollama

    ws, choice = workspace, ModelChoice(workspace.llm.path, None, "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ollama anywhere
    skipped = ollama.export(ws, choice, tmp_path, "panza-me")
    assert not skipped.registered and "ollama is not installed" in skipped.message
    assert skipped.modelfile.read_text().startswith(f"FROM {workspace.llm.path}\n")

    log = _fake_ollama(tmp_path)
    done = ollama.export(ws, choice, tmp_path, "panza-me:v1")
    assert done.registered and "ollama run panza-me:v1" in done.message
    assert log.read_text().split() == ["create", "panza-me:v1", "-f", str(done.modelfile)]

    _fake_ollama(tmp_path, exit_code=1)
    with pytest.raises(ModelError, match="is it running.*'ollama serve'") as failed:
        ollama.export(ws, choice, tmp_path, "panza-me")
    assert "\n" not in str(failed.value)


def test_bad_names_are_refused_before_any_work():
    from training import ollama

    for good in ("panza-me", "david/panza:latest", "me_2.1"):
        ollama.check_name(good)
    for bad in ("", "two words", "a:b:c", "-x", "x;rm -rf"):
        with pytest.raises(ModelError, match="not an Ollama model name"):
            ollama.check_name(bad)
