"""The current-runtime lookup: runtime() starts one through the auto-init hook that
shoal.api registers (init), so that public modules need not import shoal.api."""

import pytest

import shoal
from shoal._private.runtime import current


@pytest.fixture
def no_runtime(monkeypatch):
    monkeypatch.setattr(current, "_runtime", None)
    monkeypatch.setattr(current, "_auto_init", current._auto_init)


def test_runtime_returns_the_current_one_without_calling_the_hook(no_runtime):
    rt = object()
    current.set_runtime(rt)
    current.set_auto_init(lambda: pytest.fail("the hook ran with a runtime present"))
    assert current.runtime() is rt
    assert current.current_runtime_or_none() is rt


def test_runtime_runs_the_hook_when_there_is_none(no_runtime):
    rt = object()
    calls = []

    def hook():
        calls.append(1)
        current.set_runtime(rt)

    current.set_auto_init(hook)
    assert current.runtime() is rt
    assert current.runtime() is rt
    assert calls == [1]


def test_runtime_without_a_hook_says_so(no_runtime):
    current.set_auto_init(None)
    with pytest.raises(RuntimeError, match="not initialized"):
        current.runtime()


def test_shoal_api_registers_init_as_the_hook():
    assert current._auto_init is shoal.api.init


def test_hooks_lend_what_shoal_api_provides():
    from shoal import _hooks
    from shoal.actor import ActorClass, ActorHandle
    from shoal.remote_function import RemoteFunction

    assert _hooks.actor_handle_type() is ActorHandle
    assert _hooks.kept_by_identity() == (shoal.ObjectRef, ActorHandle,
                                         shoal.ObjectRefGenerator)

    def f():
        return 1

    class C:
        pass

    assert isinstance(_hooks.remote(f), RemoteFunction)
    assert isinstance(_hooks.remote(C), ActorClass)
    with pytest.raises(TypeError, match="must be of type Dict"):
        _hooks.validate_runtime_env({"env_vars": 1})
