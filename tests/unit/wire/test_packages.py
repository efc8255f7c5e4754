"""Packages for working_dir and py_modules: named by content, excludes honoured, a size
limit, and unpacking that never writes outside its target."""

from __future__ import annotations

import os
import zipfile

import pytest

from shoal._private.wire import packages


def _tree(root, files: dict) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_the_name_depends_on_content_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        _tree(d, {"main.py": "print(1)\n", "pkg/mod.py": "X = 1\n"})
    os.utime(b / "main.py", (1, 1))
    uri_a, data_a = packages.build(str(a))
    uri_b, _ = packages.build(str(b))
    assert uri_a == uri_b and packages.NAME_RE.match(uri_a.split("://")[1])
    (b / "main.py").write_text("print(2)\n")
    assert packages.build(str(b))[0] != uri_a
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("f", "1")
    assert packages.build(str(tmp_path / "x.zip"))[0].startswith("gcs://_ray_pkg_")
    assert sorted(zipfile.ZipFile(__import__("io").BytesIO(data_a)).namelist()) == \
        ["main.py", "pkg/mod.py"]


def test_excludes_and_the_parent_dir(tmp_path):
    d = tmp_path / "proj"
    _tree(d, {"main.py": "", "data/big.bin": "x", "logs/a.log": "", "keep/a.log": "",
              "build/out": "", "sub/build/out": "", ".git/HEAD": "", "__pycache__/m.pyc": ""})
    _, data = packages.build(str(d), ["data/", "*.log", "/build"])
    names = sorted(zipfile.ZipFile(__import__("io").BytesIO(data)).namelist())
    assert names == ["main.py", "sub/build/out"]
    _, data = packages.build(str(d), ["data", "logs", "keep", "build", "sub"],
                             include_parent_dir=True)
    assert zipfile.ZipFile(__import__("io").BytesIO(data)).namelist() == ["proj/main.py"]


def test_a_package_over_the_limit_is_refused_naming_its_size(tmp_path):
    _tree(tmp_path / "p", {"f": "x" * 3000})
    with pytest.raises(packages.PackageTooLarge, match=r"exceeds the maximum size"):
        packages.build(str(tmp_path / "p"), max_bytes=1000)
    with pytest.raises(ValueError, match="does not exist"):
        packages.build(str(tmp_path / "nope"))
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        packages.build(str(tmp_path / "file.txt"))


def test_unpack_once_and_atomically(tmp_path):
    _tree(tmp_path / "p", {"a/b.py": "B = 2\n"})
    _, data = packages.build(str(tmp_path / "p"))
    (tmp_path / "pkg.zip").write_bytes(data)
    target = str(tmp_path / "out" / "pkg")
    assert packages.unpack(str(tmp_path / "pkg.zip"), target) == target
    assert (tmp_path / "out" / "pkg" / "a" / "b.py").read_text() == "B = 2\n"
    assert os.listdir(tmp_path / "out") == ["pkg"]  # no temporary directory left
    assert packages.unpack(str(tmp_path / "missing.zip"), target) == target  # cached


@pytest.mark.parametrize("member", ["../escape.py", "/abs/escape.py", "a/../../escape.py"])
def test_unpack_refuses_members_outside_the_target(tmp_path, member):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ok.py", "")
        zf.writestr(member, "evil")
    with pytest.raises(ValueError, match="outside"):
        packages.unpack(str(bad), str(tmp_path / "out" / "t"))
    assert not (tmp_path / "out" / "t").exists() and not (tmp_path / "escape.py").exists()
    assert os.listdir(tmp_path / "out") == []


def test_unpack_refuses_symlinks(tmp_path):
    bad = tmp_path / "link.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="outside"):
        packages.unpack(str(bad), str(tmp_path / "out"))


def test_uris():
    assert packages.split_uri("gcs://_ray_pkg_0123456789abcdef.zip") == \
        ("gcs", "_ray_pkg_0123456789abcdef.zip")
    for bad in ("s3://b/k.zip", "gcs://../x.zip", "gcs://_ray_pkg_zz.zip", "nope"):
        with pytest.raises(ValueError):
            packages.split_uri(bad)


def test_unpack_refuses_a_package_that_inflates_past_the_limit(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * 200_000)
    assert bomb.stat().st_size < 10_000
    with pytest.raises(ValueError, match="more than the limit"):
        packages.unpack(str(bomb), str(tmp_path / "out" / "t"), max_bytes=100_000)
    assert os.listdir(tmp_path / "out") == []
