"""``panza doctor``: what this machine gives Panza, and whether llama.cpp runs on it.

Each check is a plain function returning ``Finding``s; none of them loads llama.cpp in this
process (the model check runs in a child, see ``selfcheck``), so a broken build is reported,
not suffered.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from panza_core import cpu_backend, locations, selfcheck, threads
from panza_core.errors import BackendError, PanzaError

LOW_DISK_BYTES = 5 << 30  # a 7B export plus its merged checkpoint needs several GB


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``status`` is ``ok``, ``warn`` (works, with a caveat) or
    ``fail`` (Panza cannot do its job until fixed; ``detail`` then says how)."""

    topic: str
    status: str
    detail: str


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_and_panza() -> Iterator[Finding]:
    yield Finding(
        "panza",
        "ok",
        f"{_version('panza-tui') or 'source tree'} on Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}",
    )


def cpu() -> Iterator[Finding]:
    """The CPU backend llama.cpp will load here, and the instruction sets behind the choice."""
    flags = cpu_backend.os_cpu_flags()
    folder = cpu_backend.library_dir()
    version = _version("llama-cpp-python")
    if folder is None or version is None:
        yield Finding("llama.cpp", "fail", "llama-cpp-python is not installed; run make install")
        return
    available = cpu_backend.variants_in(folder)
    if not available:
        yield Finding(
            "llama.cpp", "warn",
            f"llama-cpp-python {version} with one built-in CPU backend: it runs only on CPUs "
            f"like the one it was built on; {selfcheck.REINSTALL}",
        )  # fmt: skip
    else:
        try:
            variant, chosen_by = cpu_backend.decide(available)
        except BackendError as exc:
            yield Finding("llama.cpp", "fail", str(exc))
        else:
            yield Finding(
                "llama.cpp",
                "warn" if chosen_by == cpu_backend.FORCE_ENV else "ok",
                f"llama-cpp-python {version}, CPU backend {variant or 'chosen by ggml'} "
                f"({chosen_by}; {len(available)} built: {' '.join(available)})",
            )
    if flags is not None:
        notable = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16",
                   "avx_vnni", "amx_tile", "amx_int8", "asimddp", "i8mm", "sve")  # fmt: skip
        enabled = [f for f in notable if f in flags]
        yield Finding(
            "cpu", "ok", f"{_cpu_name()}; enabled by the OS: {' '.join(enabled) or 'none'}"
        )
    cores = threads.available_cores()
    yield Finding(
        "threads", "ok",
        f"{cores} cores; drafting uses {threads.pick(0)}, training {threads.pick(0, reserve=0)}",
    )  # fmt: skip


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_check(model: Path | None, lora: Path | None = None) -> Iterator[Finding]:
    """Load the model in a child process and decode a few tokens."""
    if model is None:
        return
    result = selfcheck.run(model, lora)
    variant = result.info.get("variant")
    where = f" on the {variant} backend" if variant and result.ok else ""
    name = f"{model.name} + {lora.name}" if lora else model.name
    detail = f"{name}: {result.message}{where}"
    yield Finding("model check", "ok" if result.ok else "fail", detail)


def gpu() -> Iterator[Finding]:
    """torch's view of CUDA, and bitsandbytes for NF4."""
    if importlib.util.find_spec("torch") is None:
        yield Finding("gpu", "warn", "torch is not installed: no training")
        return
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        yield Finding("gpu", "ok", f"torch {torch.__version__}, CUDA {torch.version.cuda}: {names}")
    else:
        yield Finding(
            "gpu", "ok", f"torch {torch.__version__}, no CUDA device: training on the CPU"
        )
    bnb = _version("bitsandbytes")
    yield Finding(
        "bitsandbytes", "ok",
        f"{bnb}: quantize = \"nf4\" available" if bnb else
        "not installed: quantize = \"nf4\" needs pip install 'bitsandbytes>=0.50'",
    )  # fmt: skip


def keyring_backend() -> Iterator[Finding]:
    from panza_core import secrets

    ring = secrets._keyring()
    if ring is not None:
        yield Finding("keyring", "ok", type(ring.get_keyring()).__name__)
    else:
        yield Finding(
            "keyring", "warn", f"no keyring backend: secrets go to {secrets._file()} (0600)"
        )


def storage() -> Iterator[Finding]:
    home = locations.home()
    free = shutil.disk_usage(home).free
    status = "ok" if free >= LOW_DISK_BYTES else "warn"
    yield Finding("PANZA_HOME", "ok", str(home))
    caveat = "" if status == "ok" else ": exports and training checkpoints need several GiB"
    yield Finding("disk", status, f"{free / (1 << 30):.1f} GiB free{caveat}")


def embedded_models() -> Iterator[Finding]:
    from panza_core import models

    for label, find in (
        ("embedded llm", lambda: models.resolve_llm("embedded").path),
        ("embedded embedding", lambda: models.resolve_embedding("embedded")),
    ):
        try:
            path = find()
        except PanzaError as exc:
            yield Finding(label, "fail", str(exc))
            continue
        size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")))
        yield Finding(label, "ok", f"{path} ({size / (1 << 20):.0f} MiB)")


def report(model: Path | None, lora: Path | None = None) -> Iterator[Finding]:
    """Every finding, cheapest first; the model check (a child process) after the CPU."""
    checks: list[Callable[[], Iterator[Finding]]] = [
        python_and_panza, cpu, lambda: model_check(model, lora), gpu, keyring_backend,
        storage, embedded_models,
    ]  # fmt: skip
    for check in checks:
        yield from check()
