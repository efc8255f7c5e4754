"""What a node's machine looks like right now: CPU, memory and disk use (for the dashboard
and ``/metrics``), read with psutil when asked, never on a timer."""

from __future__ import annotations

import os
import time

import psutil

_BOOT = psutil.boot_time()


def machine_stats(session_dir: str) -> dict:
    vm = psutil.virtual_memory()
    try:
        disk = psutil.disk_usage(session_dir)
        disk_total, disk_used = disk.total, disk.used
    except OSError:
        disk_total = disk_used = 0
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        # Since the previous call in this process (the first call answers 0.0).
        "cpu_percent": psutil.cpu_percent(interval=None),
        "num_cpus": psutil.cpu_count() or 1,
        "mem_total": vm.total, "mem_used": vm.total - vm.available,
        "disk_total": disk_total, "disk_used": disk_used,
        "load_avg": list(load), "time": time.time(), "boot_time": _BOOT,
    }
