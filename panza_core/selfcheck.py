"""Load a model and decode a few tokens in a child process, so a broken llama.cpp build is
one clear line, not a core dump.

A llama.cpp compiled for another CPU (``-march=native`` on a machine with AMX, copied or
cached onto one without) dies of SIGILL on its first matrix product, taking the process with
it. Running the first decode in a child turns that into a signal we can name, with the fix.
``panza doctor`` always runs it; ``panza demo`` and ``panza tui`` run it once per install
(a stamp keyed by the installed libraries and the CPU's flags).

Run as ``python -m panza_core.selfcheck MODEL.gguf [LORA.gguf]``: prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from panza_core import cpu_backend, locations
from panza_core.errors import BackendError

PROMPT = "Dear Sam, thank you for"
TOKENS = 8
REINSTALL = "reinstall llama-cpp-python with the portable build: make clean install"

_SIGNALS = {  # signal -> (what it is, what it likely means here)
    signal.SIGILL: (
        "illegal instruction",
        "this build uses CPU instructions this machine does not enable "
        "(compiled with -march=native on another CPU?)",
    ),
    signal.SIGSEGV: ("segmentation fault", ""),
    signal.SIGBUS: ("bus error", "a truncated model file or a full disk?"),
    signal.SIGABRT: ("aborted", "an assertion inside llama.cpp failed"),
    signal.SIGKILL: ("killed", "out of memory?"),
}


@dataclass
class Check:
    """Result of one child-process check.

    ``ok`` is True when the child decoded ``tokens`` tokens; ``info`` holds what it reported
    (``variant``, ``chosen_by``, ``tokens``, ``tokens_per_s``, ``load_s``); ``signal`` is the
    signal number that killed it, if one did; ``message`` is one line for the user.
    """

    ok: bool
    message: str
    info: dict = field(default_factory=dict)
    signal: int | None = None


def child_command(model: Path, lora: Path | None = None) -> list[str]:
    """The argv of the child that runs the check (a function so tests can replace it)."""
    extra = [str(lora)] if lora else []
    return [sys.executable, "-m", "panza_core.selfcheck", str(model), *extra]


def describe_exit(code: int) -> tuple[str, int | None]:
    """A readable cause for a child's exit status (negative: killed by signal ``-code``),
    and the signal number if there was one."""
    if code >= 0:
        return f"exit status {code}", None
    number = -code
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}", number
    what, hint = _SIGNALS.get(signal.Signals(number), ("killed by a signal", ""))
    return f"{name} ({what}){': ' + hint if hint else ''}", number


def run(model: Path, lora: Path | None = None, timeout_s: float = 300) -> Check:
    """Load ``model`` (and ``lora``) in a child and decode ``TOKENS`` tokens greedily.

    Never raises for what the child does: a crash, a hang (``timeout_s``) or an error come
    back as ``Check(ok=False, message=...)`` naming the cause and the fix.
    """
    try:
        proc = subprocess.run(
            child_command(model, lora), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return Check(
            False,
            f"loading {model.name} and decoding {TOKENS} tokens took over {timeout_s:.0f} s; "
            "the machine may be overloaded or swapping",
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    info = json.loads(lines[-1]) if lines else {}
    if proc.returncode == 0 and info.get("ok"):
        return Check(True, f"decoded {info['tokens']} tokens, {info['tokens_per_s']:.1f}/s", info)
    if proc.returncode < 0:
        cause, number = describe_exit(proc.returncode)
        return Check(False, f"llama.cpp crashed with {cause}; {REINSTALL}, then run panza doctor",
                     info, number)  # fmt: skip
    error = info.get("error") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if not error.startswith("llama.cpp"):  # Panza's own errors name llama.cpp already
        error = f"llama.cpp could not run {model.name}: {error}"
    return Check(False, error, info)


def _stamp(model: Path) -> Path:
    """Where a passed check is remembered: keyed by the installed llama.cpp libraries, the
    CPU flags the OS enables, a forced variant and the model file."""
    digest = hashlib.sha256()
    folder = cpu_backend.library_dir()
    for path in sorted(folder.iterdir()) if folder and folder.is_dir() else []:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(" ".join(sorted(cpu_backend.os_cpu_flags() or ())).encode())
    digest.update(os.environ.get(cpu_backend.FORCE_ENV, "").encode())
    size = model.stat().st_size if model.exists() else 0
    digest.update(f"{model.resolve()}:{size}".encode())
    return locations.cache_dir() / "selfcheck" / digest.hexdigest()[:24]


def ensure(model: Path) -> None:
    """Run the check once per install (and model); raise ``BackendError`` if it fails."""
    stamp = _stamp(model)
    if stamp.exists():
        return
    result = run(model)
    if not result.ok:
        raise BackendError(result.message)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(result.info))


def _child(argv: list[str]) -> int:
    """The child's side: load, decode, print one JSON line; errors as JSON, not tracebacks."""
    from panza_core import llama

    out: dict = {"ok": False}
    try:
        start = time.perf_counter()
        llama.import_llama_cpp()
        backend = cpu_backend.loaded()
        if backend is not None:
            out.update(variant=backend.variant, chosen_by=backend.chosen_by)
        lora = Path(argv[1]) if len(argv) > 1 else None
        llm = llama.load(Path(argv[0]), lora_path=lora, n_ctx=256)
        out["load_s"] = round(time.perf_counter() - start, 3)
        generation = llama.stream(llm, PROMPT, max_tokens=TOKENS, temperature=0.0)
        out.update(ok=True, tokens=generation.tokens, tokens_per_s=generation.tokens_per_s)
    except Exception as exc:  # reported to the parent, which prints one line
        out["error"] = str(exc) or type(exc).__name__
    print(json.dumps(out), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
