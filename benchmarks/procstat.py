"""CPU time and memory of processes, from /proc (Linux; no psutil needed)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float  # user + system CPU seconds so far
    rss_mib: float  # resident set size now
    peak_rss_mib: float  # VmHWM: the highest RSS the process ever had


def sample(pid: int) -> ProcSample | None:
    """CPU and memory of ``pid``, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command name (which may hold spaces), see proc(5): utime is 14th, stime 15th.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    kib = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            kib[key] = int(value.split()[0])
    return ProcSample(cpu, kib.get("VmRSS", 0) / 1024, kib.get("VmHWM", 0) / 1024)


def kwok_component_pids(workdir: Path) -> dict[str, int]:
    """Component name -> pid of a kwokctl binary-runtime cluster (its ``pids/*.pid`` files)."""
    pids = {}
    for f in sorted((workdir / "pids").glob("*.pid")):
        try:
            pids[f.stem] = int(f.read_text().strip())
        except ValueError:
            continue
    return pids


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """Component -> CPU seconds so far (components that are gone are left out)."""
    out = {}
    for name, pid in pids.items():
        s = sample(pid)
        if s is not None:
            out[name] = s.cpu_s
    return out


def rss_of(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        s = sample(pid)
        if s is not None:
            out[name] = round(s.rss_mib, 1)
    return out
