"""CPU time and memory of running processes, read from /proc (Linux only).

A contender may be several processes (nginx: a master and its worker): every reading
sums over the process and its descendants.
"""

from __future__ import annotations

import os
from pathlib import Path

# Clock ticks per second: the unit of utime and stime in /proc/PID/stat (proc(5)).
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (children of children too)."""
    result = [pid]
    index = 0
    while index < len(result):
        current = result[index]
        index += 1
        children = Path(f"/proc/{current}/task/{current}/children")
        try:
            result += [int(p) for p in children.read_text().split()]
        except OSError:
            continue
    return result


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` in seconds (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces: fields start after its ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pids: list[int]) -> int:
    """Resident memory now (VmRSS), summed, in KiB."""
    return sum(_status_kib(pid, "VmRSS") for pid in pids)


def peak_rss_kib(pids: list[int]) -> int:
    """Peak resident memory since each process started (VmHWM), summed, in KiB."""
    return sum(_status_kib(pid, "VmHWM") for pid in pids)
