"""Which of llama.cpp's CPU backends this machine runs, chosen from what the OS enables.

The install builds llama.cpp the way its own release builds are made (``GGML_NATIVE=OFF``,
``GGML_BACKEND_DL=ON``, ``GGML_CPU_ALL_VARIANTS=ON``): the core libraries use only the
baseline instruction set, and the matrix code is compiled once per CPU generation into
``libggml-cpu-<variant>.so`` files beside them. Exactly one variant is loaded at run time.

ggml picks a variant from ``cpuid`` alone (its x86 scorer says so: "this does not check for
OS support"). A CPU can advertise AMX or AVX-512 while the kernel or hypervisor has not
enabled their register state; code using them then dies of SIGILL. On Linux the kernel
lists in ``/proc/cpuinfo`` only the features it enables, so on x86 we choose from those
flags and load that variant ourselves. Elsewhere (arm64, whose scorer reads the kernel's
hwcaps, or a system without ``/proc/cpuinfo``) ggml's own choice stands.
"""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from panza_core.errors import BackendError

# Feature groups as ggml's CMake options name them -> the /proc/cpuinfo flags each needs,
# and the weight ggml's x86 scorer gives it (ggml-cpu/arch/x86/cpu-feats.cpp), so that among
# the variants this machine runs we prefer the one ggml would prefer.
_FEATURES: dict[str, tuple[frozenset[str], int]] = {
    "FMA": (frozenset({"fma"}), 1),
    "F16C": (frozenset({"f16c"}), 1 << 1),
    "SSE42": (frozenset({"sse4_2"}), 1 << 2),
    "BMI2": (frozenset({"bmi2"}), 1 << 3),
    "AVX": (frozenset({"avx"}), 1 << 4),
    "AVX2": (frozenset({"avx2"}), 1 << 5),
    "AVX_VNNI": (frozenset({"avx_vnni"}), 1 << 6),
    "AVX512": (frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}), 1 << 7),
    "AVX512_VBMI": (frozenset({"avx512vbmi"}), 1 << 8),
    "AVX512_BF16": (frozenset({"avx512_bf16"}), 1 << 9),
    "AVX512_VNNI": (frozenset({"avx512_vnni"}), 1 << 10),
    "AMX_TILE": (frozenset({"amx_tile"}), 0),
    "AMX_INT8": (frozenset({"amx_int8"}), 1 << 11),
}

_HASWELL = ("SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2")
_SKYLAKEX = (*_HASWELL, "AVX512")

# ggml/src/CMakeLists.txt, GGML_CPU_ALL_VARIANTS on x86: variant -> feature groups.
X86_VARIANTS: dict[str, tuple[str, ...]] = {
    "x64": (),
    "sse42": ("SSE42",),
    "sandybridge": ("SSE42", "AVX"),
    "ivybridge": ("SSE42", "AVX", "F16C"),
    "piledriver": ("SSE42", "AVX", "F16C", "FMA"),
    "haswell": _HASWELL,
    "skylakex": _SKYLAKEX,
    "cannonlake": (*_SKYLAKEX, "AVX512_VBMI"),
    "cascadelake": (*_SKYLAKEX, "AVX512_VNNI"),
    "icelake": (*_SKYLAKEX, "AVX512_VBMI", "AVX512_VNNI"),
    "cooperlake": (*_SKYLAKEX, "AVX512_VNNI", "AVX512_BF16"),
    "zen4": (*_SKYLAKEX, "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"),
    "alderlake": (*_HASWELL, "AVX_VNNI"),
    "sapphirerapids": (
        *_SKYLAKEX,
        "AVX512_VBMI",
        "AVX512_VNNI",
        "AVX512_BF16",
        "AMX_TILE",
        "AMX_INT8",
    ),  # fmt: skip
}

FORCE_ENV = "PANZA_LLAMA_CPU"
"""Set to a variant name (``haswell``) to load that one instead of the chosen one."""

_PREFIX = "libggml-cpu-"


@dataclass(frozen=True)
class CpuBackend:
    """The CPU backend llama.cpp runs on in this process.

    ``variant`` is the ``libggml-cpu-<variant>`` loaded (None: a single built-in CPU
    backend, as in a build without ``GGML_BACKEND_DL``); ``chosen_by`` says who chose it:
    ``"os-flags"`` (/proc/cpuinfo), ``"ggml"`` (cpuid, where the OS cannot be asked),
    ``PANZA_LLAMA_CPU`` (forced) or ``"built-in"``.
    """

    variant: str | None
    chosen_by: str
    available: tuple[str, ...]
    path: Path | None


def os_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The CPU flags the kernel lists (the features it enables), or None without procfs."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def variant_flags(variant: str) -> frozenset[str]:
    """The /proc/cpuinfo flags an x86 variant needs. Raises KeyError for an unknown one."""
    return frozenset().union(*(_FEATURES[f][0] for f in X86_VARIANTS[variant]))


def _score(variant: str) -> int:
    return 1 + sum(_FEATURES[f][1] for f in X86_VARIANTS[variant])


def choose_x86(available: list[str], flags: frozenset[str]) -> str | None:
    """The best of ``available`` variants whose every instruction set is in ``flags``.

    Best = highest ggml score (AMX > AVX512-VNNI > BF16 > VBMI > AVX512 > AVX-VNNI > AVX2 ...).
    None if none of them can run here.
    """
    runnable = [v for v in available if v in X86_VARIANTS and variant_flags(v) <= flags]
    return max(runnable, key=_score, default=None)


def decide(available: list[str]) -> tuple[str | None, str]:
    """(variant to load, who chose it) among the ``available`` built variants.

    ``PANZA_LLAMA_CPU`` wins; on x86 with procfs the OS-enabled flags decide ("os-flags");
    elsewhere the variant is None and ggml chooses ("ggml": arm64 scores by the kernel's
    hwcaps). Raises ``BackendError`` when no built x86 variant can run on this CPU.
    """
    forced = os.environ.get(FORCE_ENV, "").strip()
    if forced:
        return forced, FORCE_ENV
    flags = os_cpu_flags()
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86") or flags is None:
        return None, "ggml"
    variant = choose_x86(available, flags)
    if variant is None:
        raise BackendError(
            f"no llama.cpp CPU backend runs on this CPU (built: {', '.join(available)}); "
            "reinstall on this machine (make clean install)"
        )
    return variant, "os-flags"


def library_dir() -> Path | None:
    """``llama_cpp/lib`` of the installed llama-cpp-python, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def variants_in(folder: Path) -> list[str]:
    """Names of the CPU variants built into ``folder`` (empty for a single-backend build)."""
    return sorted(
        p.name[len(_PREFIX) :].split(".")[0] for p in folder.glob(f"{_PREFIX}*") if p.is_file()
    )


def _shared_name(base: str) -> str:
    """``libggml.so`` / ``libggml.dylib`` / ``ggml.dll``, as llama_cpp names its libraries."""
    system = platform.system()
    if system == "Windows":
        return f"{base}.dll"
    return f"lib{base}.dylib" if system == "Darwin" else f"lib{base}.so"


def _variant_file(folder: Path, variant: str) -> Path:
    for path in folder.glob(f"{_PREFIX}{variant}.*"):
        return path
    raise BackendError(f"no CPU backend {variant!r} in {folder}")


_loaded: CpuBackend | None = None


def loaded() -> CpuBackend | None:
    """The backend loaded in this process by ``load``, or None before."""
    return _loaded


def load(folder: Path | None = None) -> CpuBackend:
    """Load llama.cpp's CPU backend for this machine into ggml's registry (once per process).

    Must run before the first model load. Raises ``BackendError`` with the cause and the fix
    when no variant can run here or the chosen one will not load.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    folder = folder or library_dir()
    available = variants_in(folder) if folder else []
    if folder is None or not available:  # the CPU backend is linked into libggml: nothing to choose
        _loaded = CpuBackend(None, "built-in", (), None)
        return _loaded
    # The very file llama_cpp and libllama load: the wheel holds libggml.so, .so.0 and
    # .so.0.25.3 as copies, not links, and a second copy would bring a second registry.
    ggml = ctypes.CDLL(str(folder / _shared_name("ggml")))
    ggml.ggml_backend_load.restype = ctypes.c_void_p
    ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]

    variant, chosen_by = decide(available)
    forced = chosen_by == FORCE_ENV
    if variant is None:
        ggml.ggml_backend_load_all_from_path(str(folder).encode())
        _loaded = CpuBackend(None, "ggml", tuple(available), None)
        return _loaded

    path = _variant_file(folder, variant)
    # RTLD_DEEPBIND as for the other llama.cpp libraries (see panza_core.llama.preload);
    # ggml's own dlopen of the same path then returns this handle.
    mode = os.RTLD_LAZY | getattr(os, "RTLD_DEEPBIND", 0)
    try:
        ctypes.CDLL(str(path), mode=mode)
    except OSError as exc:
        raise BackendError(f"cannot load llama.cpp's CPU backend {path.name}: {exc}") from exc
    if not ggml.ggml_backend_load(str(path).encode()):
        raise BackendError(
            f"llama.cpp refused its CPU backend {variant!r} on this CPU"
            + (f"; unset {FORCE_ENV}" if forced else "; reinstall (make clean install)")
        )
    _loaded = CpuBackend(variant, chosen_by, tuple(available), path)
    return _loaded
