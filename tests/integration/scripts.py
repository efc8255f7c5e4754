"""Running a driver script in a process of its own, as a user would (``python main.py``).

Each run gets a private session root (short, under the system temp directory: socket paths
must stay under 108 bytes) and waits for every process of its cluster to be gone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

from tests.conftest import shoal_processes, wait_for_condition

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(text: str) -> str:
    """``text`` without the colour codes of the log prefixes."""
    return ANSI.sub("", text)


def run_script(path: str, code: str, *, cwd: str | None = None, env: dict | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Write ``code`` to ``path``, run it with this interpreter, and return the result once
    its cluster's processes have exited."""
    with open(path, "w") as f:
        f.write(textwrap.dedent(code))
    root = tempfile.mkdtemp(prefix="shw-")
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("SHOAL_ADDRESS", "RAY_ADDRESS", "OMP_NUM_THREADS", "PYTHONPATH")}
    full_env.update(env or {})
    full_env["SHOAL_SESSION_ROOT"] = root
    try:
        proc = subprocess.run([sys.executable, path], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd or os.path.dirname(path), env=full_env)
        sessions = [os.path.join(root, n) for n in os.listdir(root) if n.startswith("session_2")]
        wait_for_condition(lambda: not any(shoal_processes(s) for s in sessions), timeout=20,
                           msg="(processes of the script's cluster left behind)")
        return proc
    finally:
        shutil.rmtree(root, ignore_errors=True)
