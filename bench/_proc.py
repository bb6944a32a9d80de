"""CPU time and peak memory of processes from ``/proc`` (Linux), without psutil.

A process's CPU time here is its own ``utime + stime`` plus that of its live descendants
and of the children it has waited for (``cutime + cstime``), so a worker that starts
helper processes or threads is measured whole. Peak memory is ``VmHWM`` (the resident
set's high-water mark) of the process and its live descendants, summed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Clock ticks per second: the unit of the CPU times in /proc/PID/stat and /proc/stat.
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` this module reads (times in clock ticks)."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """Parse one ``/proc/PID/stat`` line; the command name may hold spaces and parentheses."""
    pid_part, _, rest = text.partition(" (")
    fields = rest[rest.rindex(")") + 2 :].split()
    # After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    return ProcStat(
        pid=int(pid_part),
        ppid=int(fields[1]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def parse_status_kib(text: str, name: str) -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``...) in KiB, or None."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    return None


def parse_machine_stat(text: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from ``/proc/stat``'s ``cpu`` line.

    Idle and iowait are not busy; steal (time a hypervisor gave to others) counts in the
    total so that a shared virtual machine does not look busier than it was.
    """
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
            # already inside user and nice.
            counted = values[:8]
            idle = counted[3] + counted[4]
            return sum(counted) - idle, sum(counted)
    raise ValueError("no cpu line in /proc/stat")


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):  # gone, or a zombie mid-exit
        return None


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pid: int, proc: Path = PROC) -> float:
    """CPU seconds used so far by ``pid``, its live descendants and its reaped children."""
    ticks = 0
    for member in descendants(pid, proc):
        stat = read_stat(member, proc)
        if stat is not None:
            ticks += stat.ticks
    return ticks / CLK_TCK


def peak_rss_mib(pid: int, proc: Path = PROC) -> float | None:
    """``VmHWM`` of ``pid`` and its live descendants, MiB; None when it is gone."""
    total = 0
    seen = False
    for member in descendants(pid, proc):
        try:
            kib = parse_status_kib((proc / str(member) / "status").read_text(), "VmHWM")
        except OSError:
            continue
        if kib is not None:
            total += kib
            seen = True
    return total / 1024 if seen else None


def machine_ticks(proc: Path = PROC) -> tuple[int, int]:
    return parse_machine_stat((proc / "stat").read_text())


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    wall: float  # time.monotonic()
    processes: dict[str, float]  # name -> CPU seconds so far
    machine: tuple[int, int]  # (busy, total) ticks


def snapshot(pids: dict[str, int], wall: float, proc: Path = PROC) -> CpuSnapshot:
    return CpuSnapshot(
        wall, {n: cpu_seconds(p, proc) for n, p in pids.items()}, machine_ticks(proc)
    )


def utilisation(start: CpuSnapshot, end: CpuSnapshot, n_cores: int) -> dict[str, float]:
    """Each process's CPU time over the window as a share of all cores, and the machine's.

    A process that keeps one of two cores busy reads 0.5; ``machine`` is the share of all
    CPU time that was busy, whoever used it.
    """
    wall = end.wall - start.wall
    if wall <= 0:
        raise ValueError("the window has no duration")
    shares = {
        name: (end.processes[name] - start.processes[name]) / (wall * n_cores)
        for name in start.processes
        if name in end.processes
    }
    busy = end.machine[0] - start.machine[0]
    total = end.machine[1] - start.machine[1]
    shares["machine"] = busy / total if total > 0 else 0.0
    return shares
