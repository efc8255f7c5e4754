"""``local_cluster.check_version``: a driver refuses a cluster of another shoal or Python
version, as Ray's ``check_version_info`` does (Python to the patch level by default, to the
minor level with ``RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor``)."""

from __future__ import annotations

import logging
import sys

import pytest

import shoal
from shoal._private.launch.local_cluster import check_version, version_info

PY = ".".join(map(str, sys.version_info[:3]))
OTHER_PATCH = f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2] + 1}"


def test_versions_recorded_are_this_processs():
    assert version_info() == {"shoal_version": shoal.__version__, "python_version": PY}


def test_same_versions_pass():
    check_version(version_info(), "node 10.0.0.1")


def test_other_shoal_version_raises_with_both_versions():
    with pytest.raises(RuntimeError) as e:
        check_version({"shoal_version": "9.9.9", "python_version": PY}, "node 10.0.0.1")
    msg = str(e.value)
    assert msg.startswith("Version mismatch: The cluster was started with:\n")
    assert "    shoal: 9.9.9\n" in msg and f"    Python: {PY}\n" in msg
    assert "This process on node 10.0.0.1 was started with:\n" in msg
    assert f"    shoal: {shoal.__version__}\n" in msg


def test_python_patch_difference_raises_at_patch_level(monkeypatch):
    monkeypatch.delenv("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", raising=False)
    with pytest.raises(RuntimeError, match="Version mismatch"):
        check_version({"shoal_version": shoal.__version__, "python_version": OTHER_PATCH},
                      "node x")


def test_python_patch_difference_only_warns_at_minor_level(monkeypatch, caplog):
    monkeypatch.setenv("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "minor")
    with caplog.at_level(logging.WARNING, logger="shoal"):
        check_version({"shoal_version": shoal.__version__, "python_version": OTHER_PATCH},
                      "node x")
    assert "Python patch version mismatch" in caplog.text
    with pytest.raises(RuntimeError, match="Version mismatch"):
        check_version({"shoal_version": shoal.__version__, "python_version": "2.7.18"},
                      "node x")


def test_bad_match_level_is_named(monkeypatch):
    monkeypatch.setenv("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "major")
    with pytest.raises(ValueError, match="'minor' or 'patch'"):
        check_version(version_info(), "node x")


def test_a_daemon_that_recorded_no_versions_is_not_checked():
    check_version({"node_address": "unix:/x"}, "node x")
