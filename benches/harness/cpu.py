"""CPU accounting from /proc, to show how much else ran during a run: the
machine is shared (the emulator, other people's builds), and a figure taken
while something else was busy deserves less trust."""

import os
import resource

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid):
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of stat (utime, stime); [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy_s():
    """CPU seconds all cores spent on anything but idling, steal included."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice]
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / _TICK


def children_cpu_s():
    """CPU seconds of every child process waited for so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def own_cpu_s():
    """CPU seconds of this process (the harness)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
