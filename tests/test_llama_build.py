"""The installed llama.cpp runs on any x86-64 CPU with AVX2, whatever machine built it: the
core libraries carry no instruction beyond the baseline, the CPU-specific code sits in
runtime-selected variants, and the variant is chosen from what the OS enables."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import pytest

from panza_core import cpu_backend

X86 = platform.machine().lower() in ("x86_64", "amd64")

# A Sapphire Rapids guest whose hypervisor does not enable AMX (the VM in the issue): cpuid
# says AMX, the kernel lists everything but amx_tile / amx_int8.
SPR_WITHOUT_AMX = (
    "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2 avx512f avx512cd avx512vl "
    "avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16 avx_vnni"
)
ALL_X86 = sorted(cpu_backend.X86_VARIANTS)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (SPR_WITHOUT_AMX, "zen4"),  # every AVX-512 extension, and no AMX tiles
        (SPR_WITHOUT_AMX + " amx_tile amx_int8 amx_bf16", "sapphirerapids"),
        ("sse4_2 avx f16c fma avx2 bmi2 avx_vnni", "alderlake"),
        ("sse4_2 avx f16c fma avx2 bmi2", "haswell"),  # an AMD EPYC or any AVX2 laptop
        ("sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw", "skylakex"),
        ("sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd", "haswell"),  # AVX-512 partly on
        ("sse4_2 avx", "sandybridge"),
        ("sse sse2", "x64"),
    ],
)
def test_the_variant_follows_the_flags_the_os_enables(flags, expected):
    assert cpu_backend.choose_x86(ALL_X86, frozenset(flags.split())) == expected


def test_only_built_variants_are_chosen_and_none_that_cannot_run():
    avx2 = frozenset("sse4_2 avx f16c fma avx2 bmi2".split())
    assert cpu_backend.choose_x86(["x64", "skylakex"], avx2) == "x64"
    assert cpu_backend.choose_x86(["skylakex", "sapphirerapids"], avx2) is None
    # AMX needs the kernel's amx_tile, never cpuid alone
    assert "amx_tile" in cpu_backend.variant_flags("sapphirerapids")


def test_os_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma\n")
    assert cpu_backend.os_cpu_flags(cpuinfo) == {"fpu", "avx2", "fma"}
    assert cpu_backend.os_cpu_flags(tmp_path / "missing") is None


def _objdump(path) -> str:
    if shutil.which("objdump") is None:  # binutils comes with the compiler the install needs
        pytest.fail("objdump not found: install binutils")
    return subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip


@pytest.mark.skipif(not X86, reason="x86-64 instruction sets")
@pytest.mark.slow
def test_the_installed_build_selects_cpu_code_at_run_time():
    folder = cpu_backend.library_dir()
    assert folder is not None, "llama-cpp-python is not installed"
    variants = cpu_backend.variants_in(folder)
    # GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS: one CPU backend per generation, nothing native
    assert {"x64", "haswell", "sapphirerapids"} <= set(variants), variants
    assert not (folder / "libggml-cpu.so").exists()
    core = [p for p in folder.glob("lib*.so*") if not p.name.startswith("libggml-cpu-")]
    assert {p.name.split(".")[0] for p in core} >= {"libllama", "libggml", "libggml-base"}
    amx = re.compile(r"\b(ldtilecfg|tileloadd|tdpb[su][su]d|tilerelease)\b")
    for path in core:
        text = _objdump(path)
        assert not amx.search(text), f"{path.name} has AMX tile instructions"
        # nothing beyond baseline x86-64 (SSE2) in the core: no AVX (ymm), no AVX-512 (zmm)
        assert not re.search(r"%[yz]mm", text), f"{path.name} has AVX code outside a variant"
    # the scan sees them where they belong
    assert amx.search(_objdump(folder / "libggml-cpu-sapphirerapids.so"))
    assert "%zmm" in _objdump(folder / "libggml-cpu-skylakex.so")


@pytest.mark.skipif(not X86, reason="x86-64 instruction sets")
def test_this_process_loads_the_variant_its_os_flags_allow():
    from panza_core import llama

    llama.import_llama_cpp()
    backend = cpu_backend.loaded()
    flags = cpu_backend.os_cpu_flags()
    assert backend is not None and backend.chosen_by == "os-flags"
    assert cpu_backend.variant_flags(backend.variant) <= flags
    assert backend.variant == cpu_backend.choose_x86(list(backend.available), flags)


def test_a_forced_variant_wins_and_the_doctor_says_so(monkeypatch):
    from panza_core import doctor

    monkeypatch.setenv(cpu_backend.FORCE_ENV, "x64")
    assert cpu_backend.decide(ALL_X86) == ("x64", cpu_backend.FORCE_ENV)
    (line,) = [f for f in doctor.cpu() if f.topic == "llama.cpp"]
    assert line.status == "warn" and "CPU backend x64 (PANZA_LLAMA_CPU" in line.detail
