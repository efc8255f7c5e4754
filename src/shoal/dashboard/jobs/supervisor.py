"""A job's supervisor: the process between the head and a job's entrypoint (run by file path
with ``python -S``: standard library only, ~10 ms to start).

``supervisor.py HEAD_PID STOP_TIMEOUT_S CMD...`` runs ``CMD`` and exits as it does (the same
code, or killed by the same signal), after ending every process the entrypoint left running.
It is its descendants' *child subreaper*, so whatever the entrypoint starts stays in its
tree, also in new sessions or double-forked; it gets SIGTERM when the head dies
(``PR_SET_PDEATHSIG``). On SIGTERM (a stop, or the head's death) it sends SIGTERM to all its
descendants and SIGKILL to those left after ``STOP_TIMEOUT_S``.
"""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def signal_all(sig: int) -> None:
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def main() -> None:
    head, timeout, cmd = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != head:  # the head died before the line above
        sys.exit(1)

    def on_term(_sig, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal_all(signal.SIGTERM)
        signal.setitimer(signal.ITIMER_REAL, timeout)

    signal.signal(signal.SIGALRM, lambda _s, _f: signal_all(signal.SIGKILL))
    signal.signal(signal.SIGTERM, on_term)
    try:
        child = os.fork()
    except OSError as e:
        print(f"cannot start the entrypoint: {e}", flush=True)
        sys.exit(1)
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            print(f"cannot start the entrypoint: {e}", flush=True)
        os._exit(127)
    status = None
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        if pid == child:
            status = st
            signal_all(signal.SIGKILL)  # what the entrypoint left running ends with it
    signal.setitimer(signal.ITIMER_REAL, 0)
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.waitstatus_to_exitcode(status) if status is not None else 1)


if __name__ == "__main__":
    main()
