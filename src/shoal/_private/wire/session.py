"""The session directory of one cluster: token, address file, logs, sockets.

``<root>/session_<time>_<pid>/`` holds ``token`` (mode 0600), ``address.json``,
``logs/`` and ``sockets/``; ``<root>/session_latest`` points at the newest session. The root
is ``/tmp/shoal`` for root and ``/tmp/shoal-<uid>`` for any other user (``SHOAL_SESSION_ROOT``
overrides it). As ssh does for ``~/.ssh``, a root, a session directory or a socket directory
that another user owns, or that group or others may write, is refused
(:class:`UnsafeSessionError`): another user could otherwise plant the session that
``init(address="auto")`` joins, with their token and sockets.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import time

from .config import config


class UnsafeSessionError(PermissionError):
    """A session path another local user owns or may write (the message says which, why)."""


def check_private(path: str, what: str, *, is_dir: bool = True) -> None:
    """Refuse ``path`` unless this user owns it and neither group nor others may write it
    (a symlink is followed only if this user owns the link too)."""
    uid = os.geteuid()
    try:
        lst = os.lstat(path)
        st = os.stat(path) if stat.S_ISLNK(lst.st_mode) else lst
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    for s, who in ((lst, "the link"), (st, "it")):
        if s.st_uid != uid:
            raise UnsafeSessionError(
                f"refusing the shoal {what} {path}: {who} is owned by uid {s.st_uid}, not by "
                f"this user (uid {uid}); another user may have created it. Remove it, or set "
                "SHOAL_SESSION_ROOT to a directory of your own.")
    if is_dir and not stat.S_ISDIR(st.st_mode):
        raise UnsafeSessionError(f"refusing the shoal {what} {path}: not a directory")
    if not is_dir and not stat.S_ISREG(st.st_mode):
        raise UnsafeSessionError(f"refusing the shoal {what} {path}: not a regular file")
    if st.st_mode & 0o022:
        raise UnsafeSessionError(
            f"refusing the shoal {what} {path}: its mode {stat.S_IMODE(st.st_mode):04o} lets "
            f"group or others write it (fix with `chmod go-w {path}`)")


def read_address(path: str) -> dict | None:
    """The ``address.json`` a session's daemon wrote when it became ready, if any (a file
    that is not this user's, or that others may write, is not read)."""
    try:
        fd = os.open(os.path.join(path, "address.json"), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                    or st.st_mode & 0o022):
                return None
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class Session:
    def __init__(self, path: str):
        self.path = path
        self.tag = os.path.basename(path).rsplit("_", 1)[-1]

    @classmethod
    def create(cls, latest: bool = True) -> Session:
        root = config.session_root
        os.makedirs(root, mode=0o700, exist_ok=True)
        check_private(root, "session root")
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = os.path.join(root, f"session_{stamp}_{os.getpid()}_{secrets.token_hex(4)}")
        os.mkdir(path, 0o700)  # exclusive: a name planted before us fails here
        os.makedirs(os.path.join(path, "logs"), mode=0o700)
        os.makedirs(os.path.join(path, "sockets"), mode=0o700)
        os.chmod(path, 0o700)
        token_path = os.path.join(path, "token")
        fd = os.open(token_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        if latest:  # heads only: `address="auto"` should find a cluster's head first
            link = os.path.join(root, "session_latest")
            tmp = link + f".{os.getpid()}"
            try:
                os.symlink(path, tmp)
                os.replace(tmp, link)
            except OSError:
                pass
        return cls(path)

    @classmethod
    def open(cls, path: str) -> Session:
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no shoal session at {path}")
        sess = cls(path)
        sess.verify()
        return sess

    def verify(self) -> None:
        """Raise :class:`UnsafeSessionError` unless the root holding this session, the
        session directory and its socket directory are this user's and private."""
        path = os.path.abspath(self.path)
        check_private(os.path.dirname(path), "session root")
        check_private(path, "session directory")
        sockets = os.path.join(path, "sockets")
        if os.path.lexists(sockets):
            check_private(sockets, "socket directory")

    def read_token(self) -> bytes:
        self.verify()
        path = os.path.join(self.path, "token")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise UnsafeSessionError(
                    f"refusing the shoal token file {path}: it must be this user's and mode "
                    f"0600 (it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})")
            return f.read().strip().encode()

    def socket_path(self, name: str) -> str:
        return os.path.join(self.path, "sockets", name + ".sock")

    def write_address(self, info: dict) -> None:
        tmp = os.path.join(self.path, "address.json.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a crashed writer's (our dir is 0700: nobody else's)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(self.path, "address.json"))

    def cleanup_sockets(self) -> None:
        shutil.rmtree(os.path.join(self.path, "sockets"), ignore_errors=True)
