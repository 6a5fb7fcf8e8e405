"""What this machine's processor can do, read without torch (the doctor asks before torch is
known to load)."""

from __future__ import annotations

from pathlib import Path

# CPU flags of bf16 arithmetic units (x86: AVX512-BF16, AMX); without them oneDNN emulates bf16
# and autocast is slower than fp32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where ``cpuinfo`` cannot be read: not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_bf16_units() -> bool:
    """Whether the CPU computes bf16 in hardware. On the project's 2-core AVX512-BF16 machine
    bf16 autocast made a training step of the default 1.56x faster (README "The
    representation")."""
    return bool(cpu_flags() & BF16_CPU_FLAGS)
