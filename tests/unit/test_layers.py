"""The layering contracts of .importlinter, checked by import-linter itself (its command,
``lint-imports``, in a subprocess): each contract is kept on the repository, and a deliberate
violation in a copy of the source breaks the contract that forbids it."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def _contracts() -> dict[str, str]:
    """Each contract's id and name, as .importlinter declares them."""
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    prefix = "importlinter:contract:"
    return {s[len(prefix):]: parser[s]["name"] for s in parser.sections()
            if s.startswith(prefix)}


CONTRACTS = _contracts()

# The contracts broken on main today, by imports that issue 12's other steps remove (or that
# still need an owner: "not yet assigned"). strict: a contract that becomes kept fails here
# until its marker is removed.
# Contracts known to fail on main, with why (each test is then xfail(strict=True)): none.
PENDING: dict[str, str] = {}

_STATUS = re.compile(r"^(?P<name>.+) (?P<status>KEPT|BROKEN)(?: \(\d+ ignored imports?\))?$")


def lint_imports(cwd: Path, src: Path, *contracts: str) -> subprocess.CompletedProcess:
    """Run import-linter's command on the contracts of ``cwd/.importlinter`` (or only the
    ones named), with the package ``shoal`` found first in ``src``."""
    env = dict(os.environ, COLUMNS="1000", NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    args = [a for c in contracts for a in ("--contract", c)]
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def statuses(output: str) -> dict[str, str]:
    """Each contract's name and whether it was KEPT or BROKEN, from the command's output."""
    found = {}
    for line in output.splitlines():
        m = _STATUS.match(line.strip())
        if m:
            found[m["name"]] = m["status"]
    return found


def broken_section(output: str, name: str) -> str:
    """The report of one broken contract (its chains), for an assertion's message."""
    start = output.rfind("\n" + name + "\n")
    return output[start:start + 6000] if start >= 0 else output[-6000:]


@pytest.fixture(scope="module")
def repository_check() -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    proc = lint_imports(ROOT, ROOT / "src")
    output = proc.stdout + proc.stderr
    return proc, statuses(output)


def test_every_contract_is_checked(repository_check):
    proc, found = repository_check
    assert set(found) == set(CONTRACTS.values()), proc.stdout + proc.stderr
    assert (proc.returncode == 0) == all(s == "KEPT" for s in found.values())


@pytest.mark.parametrize("contract", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=PENDING[c]))
    if c in PENDING else c for c in CONTRACTS])
def test_contract_is_kept(repository_check, contract):
    proc, found = repository_check
    name = CONTRACTS[contract]
    output = proc.stdout + proc.stderr
    assert found.get(name) == "KEPT", broken_section(output, name)


def test_a_deliberate_violation_breaks_its_contracts(tmp_path):
    """A public module imported from _private/wire, and the runtime from the wire, in a copy
    of the source: the contracts against each fail, naming the imports."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "shoal", src / "shoal",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    ids = src / "shoal" / "_private" / "wire" / "ids.py"
    lines = ids.read_text().splitlines()
    lines += ["from shoal import api  # noqa: E402,F401",
              "from shoal._private.runtime import core  # noqa: E402,F401"]
    ids.write_text("\n".join(lines) + "\n")
    n = len(lines)

    proc = lint_imports(tmp_path, src, "private-imports-no-public-module", "private-layers")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    found = statuses(output)
    assert found == {CONTRACTS["private-imports-no-public-module"]: "BROKEN",
                     CONTRACTS["private-layers"]: "BROKEN"}, output
    assert "shoal._private is not allowed to import shoal.api" in output
    assert f"shoal._private.wire.ids -> shoal.api (l.{n - 1})" in output
    assert "shoal._private.wire is not allowed to import shoal._private.runtime" in output
    assert f"shoal._private.wire.ids -> shoal._private.runtime.core (l.{n})" in output


def test_the_check_passes_on_a_copy_where_the_contract_holds(tmp_path):
    """The other side of the deliberate violation: a contract kept on the copy unchanged
    (the libraries' independence) stays kept, and breaks once a library imports another."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "shoal", src / "shoal",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    kept = lint_imports(tmp_path, src, "libraries-independent")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    serve = src / "shoal" / "serve" / "__init__.py"
    serve.write_text("import shoal.data  # noqa: F401\n" + serve.read_text())
    broken = lint_imports(tmp_path, src, "libraries-independent")
    output = broken.stdout + broken.stderr
    assert broken.returncode == 1, output
    assert statuses(output) == {CONTRACTS["libraries-independent"]: "BROKEN"}, output
    assert "shoal.serve -> shoal.data (l.1)" in output
