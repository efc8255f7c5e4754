"""Why an actor died, in the words of Ray's ``ActorDiedErrorContext.error_message``.

Shared by the head's actor table, which records the cause, and the actor's worker, which
sends its own (``USER_EXIT``) when it leaves; kept at the bottom layer so both may use it.
"""

from __future__ import annotations

KILLED = "The actor is dead because it was killed by `ray.kill`."
OUT_OF_SCOPE = "The actor is dead because all references to the actor were removed."
CRASHED = ("Worker unexpectedly exits with a connection error code 2. End of file. Some "
           "common causes include: (1) the process was killed by the OOM killer due to high "
           "memory usage, (2) the process was killed by a signal (shoal stop, kill -9), or "
           "(3) the worker crashed unexpectedly due to SIGSEGV or another unexpected error.")
USER_EXIT = ("Worker exits by an user request. Worker exits with an exit code 0. "
             "exit_actor() is called.")
KILLED_RESTARTABLE = ("Worker exits because the actor is killed. The actor is dead because "
                      "it was killed by `ray.kill`.")


def worker_died_cause(exit_type: str, detail: str) -> str:
    """Why an actor died with its worker process: exit type (Ray's ``WorkerExitType`` names:
    ``SYSTEM_ERROR``, ``INTENDED_USER_EXIT``, ``INTENDED_SYSTEM_EXIT``) and details."""
    return (f"The actor is dead because its worker process has died. Worker exit type: "
            f"{exit_type} Worker exit detail: {detail}")


def owner_died_cause(owner_id: bytes, owner_ip: str) -> str:
    return (f"The actor is dead because its owner has died. Owner Id: {owner_id.hex()} "
            f"Owner Ip address: {owner_ip} Owner worker exit type: SYSTEM_ERROR Worker exit "
            f"detail: the owner's connection to the control store closed.")


def node_died_cause(node_id: bytes | None) -> str:
    node = node_id.hex() if node_id else "unknown"
    return (f"The actor died because its node has died. Node Id: {node}\n"
            f"\tthe actor's node was terminated unexpectedly: its daemon stopped answering "
            f"the head (connection closed or heartbeats missed).")


def creation_failed_cause(task_error: str) -> str:
    return f"The actor died because of an error raised in its creation task, {task_error}"
