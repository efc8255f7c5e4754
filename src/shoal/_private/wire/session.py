"""The session directory of one cluster: token, address file, logs, sockets.

``/tmp/shoal/session_<time>_<pid>/`` holds ``token`` (mode 0600), ``address.json``,
``logs/`` and ``sockets/``; ``/tmp/shoal/session_latest`` points at the newest session.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time

from .config import config


class Session:
    def __init__(self, path: str):
        self.path = path
        self.tag = os.path.basename(path).rsplit("_", 1)[-1]

    @classmethod
    def create(cls, latest: bool = True) -> Session:
        root = config.session_root
        os.makedirs(root, mode=0o755, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        path = os.path.join(root, f"session_{stamp}_{os.getpid()}_{secrets.token_hex(4)}")
        os.makedirs(os.path.join(path, "logs"), mode=0o700)
        os.makedirs(os.path.join(path, "sockets"), mode=0o700)
        os.chmod(path, 0o700)
        token_path = os.path.join(path, "token")
        fd = os.open(token_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
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
        return cls(path)

    def read_token(self) -> bytes:
        with open(os.path.join(self.path, "token")) as f:
            return f.read().strip().encode()

    def socket_path(self, name: str) -> str:
        return os.path.join(self.path, "sockets", name + ".sock")

    def write_address(self, info: dict) -> None:
        tmp = os.path.join(self.path, "address.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(self.path, "address.json"))

    def cleanup_sockets(self) -> None:
        shutil.rmtree(os.path.join(self.path, "sockets"), ignore_errors=True)
