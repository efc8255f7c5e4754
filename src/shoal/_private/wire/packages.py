"""A local directory (or .zip, or Python package) as an uploaded package, as Ray ships a job's
``working_dir`` and ``py_modules``: zipped, named by a hash of its content
(``gcs://_ray_pkg_<hash>.zip``), uploaded once (``PUT /api/packages/gcs/<name>``) and
unpacked on the node that runs the job.

The hash covers each file's relative path, mode bit for execution and bytes, in path order,
so the same tree always gets the same name whatever the files' times are; a zip file given
as is gets the hash of its bytes. ``excludes`` are gitignore-like patterns (``*.log``,
``data/``, ``/build``, ``**/tmp``). Unpacking refuses members that would land outside the
target (absolute paths, ``..``, links), and a package that inflates past
``MAX_UNPACKED_BYTES``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile

MAX_PACKAGE_BYTES = 512 * 1024 * 1024  # Ray's GCS_STORAGE_MAX_SIZE
MAX_UNPACKED_BYTES = 4 * MAX_PACKAGE_BYTES  # a package that inflates beyond is refused
WARN_FILE_BYTES = 10 * 1024 * 1024
PROTOCOL = "gcs"
NAME_RE = re.compile(r"^_ray_pkg_[0-9a-f]{16,64}\.zip$")
_ALWAYS_EXCLUDED = (".git", "__pycache__")


class PackageTooLarge(ValueError):
    pass


def is_uri(value: str) -> bool:
    return "://" in value


def split_uri(uri: str) -> tuple[str, str]:
    """``gcs://_ray_pkg_x.zip`` -> ``("gcs", "_ray_pkg_x.zip")``; ValueError for another form."""
    protocol, sep, name = uri.partition("://")
    if not sep or protocol != PROTOCOL or not NAME_RE.match(name):
        raise ValueError(f"{uri!r} is not a package of this cluster (gcs://_ray_pkg_<hash>.zip)")
    return protocol, name


def _excluded(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    parts = rel.split("/")
    if parts[-1] in _ALWAYS_EXCLUDED:
        return True
    for pat in patterns:
        pat = pat.strip()
        if not pat or pat.startswith("#"):
            continue
        dir_only = pat.endswith("/")
        pat = pat.rstrip("/")
        if dir_only and not is_dir:
            continue
        if pat.startswith("/"):
            if fnmatch.fnmatchcase(rel, pat[1:]):
                return True
        elif "/" in pat:
            if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, pat.removeprefix("**/")):
                return True
        elif fnmatch.fnmatchcase(parts[-1], pat):
            return True
    return False


def _files(root: str, excludes: list[str]) -> list[tuple[str, str]]:
    """``(relative path, absolute path)`` of every file to ship, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(d for d in dirnames
                             if not _excluded(rel_dir + d, True, excludes))
        for f in filenames:
            rel = rel_dir + f
            path = os.path.join(dirpath, f)
            if _excluded(rel, False, excludes) or not os.path.isfile(path):
                continue
            out.append((rel, path))
    out.sort()
    return out


def build(path: str, excludes: list[str] | None = None, *, include_parent_dir: bool = False,
          max_bytes: int = MAX_PACKAGE_BYTES) -> tuple[str, bytes]:
    """``(uri, zip bytes)`` of a directory (its content at the zip's root, or under its own
    name with ``include_parent_dir``, as for ``py_modules``) or of a ``.zip`` file as is."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(path):
        if not path.endswith(".zip"):
            raise ValueError(f"{path} is a file; a working_dir or py_module is a directory or "
                             "a .zip file")
        size = os.path.getsize(path)
        _check_size(size, path, max_bytes)
        with open(path, "rb") as f:
            data = f.read()
        return f"{PROTOCOL}://_ray_pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip", data
    if not os.path.isdir(path):
        raise ValueError(f"{path} does not exist (a working_dir or py_module must be a local "
                         "directory, a .zip file or a URI)")
    excludes = list(excludes or [])
    files = _files(path, excludes)
    total = sum(os.path.getsize(p) for _, p in files)
    _check_size(total, path, max_bytes)
    prefix = os.path.basename(path.rstrip("/")) + "/" if include_parent_dir else ""
    digest = hashlib.sha256(prefix.encode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for rel, abs_path in files:
            mode = os.stat(abs_path).st_mode
            with open(abs_path, "rb") as f:
                data = f.read()
            digest.update(rel.encode() + b"\0" + (b"x" if mode & stat.S_IXUSR else b"-")
                          + len(data).to_bytes(8, "big") + data)
            info = zipfile.ZipInfo(prefix + rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | (mode & 0o777)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return f"{PROTOCOL}://_ray_pkg_{digest.hexdigest()[:32]}.zip", buf.getvalue()


def _check_size(size: int, path: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise PackageTooLarge(
            f"Package size ({size / 2**20:.2f}MiB) of {path} exceeds the maximum size of "
            f"{max_bytes / 2**20:.2f}MiB. Exclude large files with the runtime_env's "
            "'excludes' option.")


def unpack(data_path: str, target: str, max_bytes: int = MAX_UNPACKED_BYTES) -> str:
    """Unpack the zip file at ``data_path`` into ``target`` (made here, atomically: unpacked
    beside it, then renamed), unless it is there already; returns ``target``."""
    if os.path.isdir(target):
        return target
    parent = os.path.dirname(target)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=parent)
    try:
        with zipfile.ZipFile(data_path) as zf:
            inflated = sum(i.file_size for i in zf.infolist())
            if inflated > max_bytes:
                raise ValueError(f"the package unpacks to {inflated} bytes, more than the "
                                 f"limit of {max_bytes}")
            for info in zf.infolist():
                name = info.filename
                if (name.startswith("/") or "\\" in name or ".." in name.split("/")
                        or stat.S_ISLNK(info.external_attr >> 16)):
                    raise ValueError(f"package member {name!r} would land outside its directory")
                dest = os.path.join(tmp, name)
                if name.endswith("/"):
                    os.makedirs(dest, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with zf.open(info) as src, open(dest, "xb") as out:
                    shutil.copyfileobj(src, out)
                mode = (info.external_attr >> 16) & 0o700
                os.chmod(dest, mode | 0o600 if mode else 0o600)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # not a concurrent unpack of the same package
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
