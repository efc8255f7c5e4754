"""``import shoal`` loads the core only: no library (shoal.dag, shoal.tune, ...) and no
optional dependency; and the libraries' rooms that are not built yet fail to import as a
missing Ray library does."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import shoal

SRC = Path(__file__).resolve().parents[2] / "src"

# Each room, and the issue that builds its library.
ROOMS = {
    "shoal.data": 19, "shoal.train": 17, "shoal.tune": 16, "shoal.air": 16,
    "shoal.rllib": 18, "shoal.serve": 20, "shoal.workflow": 23,
    "shoal.autoscaler": 22, "shoal.util.joblib": 21, "shoal.util.multiprocessing": 21,
    "shoal.util.dask": 21, "shoal.util.sgd": 17,
}
LIBRARIES = ("shoal.dag", "shoal.runtime_env", "shoal.job_submission", *ROOMS)
OPTIONAL = ("numpy", "pandas", "pyarrow", "torch", "tensorflow", "jax", "aiohttp", "tqdm",
            "prometheus_client", "pydot", "selenium", "joblib", "dask", "sklearn", "scipy",
            "gymnasium", "gym")


def test_import_shoal_imports_no_library_and_no_optional_dependency():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys, shoal; print(json.dumps(sorted(sys.modules)))"],
        env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    loaded = json.loads(out)
    assert "shoal" in loaded and "shoal.api" in loaded
    unwanted = LIBRARIES + OPTIONAL + ("shoal.dashboard",)
    assert [m for m in loaded if m in unwanted or m.startswith(
        tuple(u + "." for u in unwanted))] == []


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_not_built_yet_fails_to_import_naming_its_library(room):
    with pytest.raises(ImportError, match="is not built in this version of shoal yet") as e:
        importlib.import_module(room)
    # ModuleNotFoundError with the room's name, as Python's for a module that is not there.
    assert isinstance(e.value, ModuleNotFoundError) and e.value.name == room
    assert str(e.value).startswith(f"{room}: ")
    assert room not in sys.modules
    # A Ray program's guard keeps working.
    try:
        importlib.import_module(room)
    except ImportError:
        pass
    else:  # pragma: no cover
        raise AssertionError(f"{room} imported")


@pytest.mark.parametrize("room", ROOMS)
def test_a_rooms_docstring_names_its_issue_and_the_public_api_rule(room):
    init = SRC.joinpath(*room.split("."), "__init__.py")
    doc = " ".join(ast.get_docstring(ast.parse(init.read_text())).split())
    assert f"Issue {ROOMS[room]} builds it" in doc
    assert "public API only" in doc and "never ``shoal._private``" in doc
    assert f"``ray.{room.removeprefix('shoal.')}``" in doc


@pytest.mark.parametrize("name", ["data", "serve", "workflow", "tune", "train", "air",
                                  "rllib", "autoscaler"])
def test_shoal_attribute_of_a_room_not_built_stays_an_attribute_error(name):
    with pytest.raises(AttributeError, match=f"Ray's '{name}' library is not part of shoal"):
        getattr(shoal, name)
    assert not hasattr(shoal, name)
    with pytest.raises(ImportError):
        exec(f"from shoal import {name}", {})
