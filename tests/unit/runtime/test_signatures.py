"""Pure parts of the public API's checks: argument binding, option checks, the shapes of
Ray's messages, runtime-context resource names, JobConfig."""

from __future__ import annotations

import warnings

import pytest

from shoal._private.runtime import options as opt_mod
from shoal._private.runtime import signature
from shoal._private.runtime.dep_errors import DEPENDENCY_FAILED, dependency_error
from shoal.exceptions import RayTaskError, WorkerCrashedError


def _python_error(fn, *args, **kwargs) -> str:
    import inspect

    with pytest.raises(TypeError) as info:
        inspect.signature(fn).bind(*args, **kwargs)
    return str(info.value)


def f(a, b=2, *, c):
    return a


def g(a, /, b, *rest, key=None, **extra):
    return a


def h(a, *rest, must, **extra):
    return a


@pytest.mark.parametrize("fn,args,kwargs", [
    (f, (), {}),
    (f, (1,), {}),
    (f, (1, 2, 3), {"c": 1}),
    (f, (1,), {"c": 1, "d": 2}),
    (g, (), {}),
    (g, (1,), {}),
    (g, (), {"a": 1, "b": 2}),
    (g, (1, 2), {"b": 3}),
    (h, (1, 2, 3, 4), {}),
    (h, (1, 2, 3, 4), {"other": 1}),
    (h, (1,), {"a": 2, "must": 3}),
])
def test_bad_calls_fail_with_pythons_own_message(fn, args, kwargs):
    chk = signature.checker(signature.describe(fn))
    with pytest.raises(TypeError) as info:
        chk.check(args, kwargs)
    assert str(info.value) == _python_error(fn, *args, **kwargs)


@pytest.mark.parametrize("fn,args,kwargs", [
    (f, (1,), {"c": 3}),
    (f, (), {"a": 1, "b": 2, "c": 3}),
    (g, (1, 2, 3, 4), {"key": 1, "other": 2}),
    (g, (1,), {"b": 2}),
    (g, (1,), {"b": 2, "a": 3}),
    (h, (1, 2, 3, 4), {"must": 1, "x": 2}),
    (h, (), {"a": 1, "must": 2}),
])
def test_good_calls_pass(fn, args, kwargs):
    signature.checker(signature.describe(fn)).check(args, kwargs)


def test_positional_counts_are_checked_without_binding():
    def h(x, y=1):
        return x

    chk = signature.checker(signature.describe(h))
    chk.check((1,), {})
    chk.check((1, 2), {})
    with pytest.raises(TypeError, match="too many positional arguments"):
        chk.check((1, 2, 3), {})
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        chk.check((), {})


def test_method_signatures_leave_out_self_and_need_it():
    class C:
        def m(self, y):
            return y

    desc = signature.describe(C.m, drop_first=True)
    assert [p[0] for p in desc] == ["y"]
    with pytest.raises(ValueError, match="Methods must take a 'self' argument"):
        signature.describe(lambda: None, drop_first=True)


def test_uninspectable_callables_are_not_checked():
    assert signature.describe(object()) is None
    assert signature.checker(None) is None


def test_signature_survives_a_round_trip_through_plain_data():
    import msgpack

    desc = signature.describe(g)
    again = msgpack.unpackb(msgpack.packb(desc))
    chk = signature.checker(again)
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        chk.check((), {})


def test_remote_misuse_message_is_rays():
    msg = opt_mod.REMOTE_ARGS_ERROR
    assert msg.startswith("The @ray.remote decorator must be applied either with no "
                          "arguments and no parentheses, for example '@ray.remote'")
    assert "'num_returns'" in msg and "'max_restarts'" in msg


def test_dynamic_num_returns_warns_and_needs_a_generator():
    from shoal.util.annotations import RayDeprecationWarning

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        opt_mod.check_num_returns(True, "dynamic")
    assert [x.category for x in w] == [RayDeprecationWarning]
    assert issubclass(RayDeprecationWarning, DeprecationWarning)
    assert "num_returns='dynamic' is deprecated" in str(w[0].message)
    with pytest.raises(ValueError, match="can only be used with generator functions"):
        opt_mod.check_num_returns(False, "streaming")


def test_rays_extra_options_are_accepted():
    opt_mod.validate({"_num_objects_per_yield": 2, "fallback_strategy": None}, actor=False)
    opt_mod.validate({"enable_tensor_transport": False,
                      "_actor_generator_backpressure_num_objects": 2}, actor=True)


def test_bundle_is_a_reserved_resource_name():
    opt_mod.check_reserved_resources({"resources": {"custom": 1}})
    with pytest.raises(ValueError, match="should not include `bundle` which is reserved"):
        opt_mod.check_reserved_resources({"resources": {"bundle": 1}})


def test_request_as_ray_shows_it():
    assert opt_mod.ray_request({"resources": {"x": 1}}, actor=False) == \
        ({"x": 1, "CPU": 1}, None)
    assert opt_mod.ray_request({}, actor=True) == ({"CPU": 0}, {"CPU": 1})
    assert opt_mod.ray_request({"num_gpus": 1}, actor=True) == ({"CPU": 1, "GPU": 1}, None)


def test_runtime_env_shape_is_validated():
    opt_mod.validate({"runtime_env": {"env_vars": {"A": "1"}}}, actor=False)
    with pytest.raises(TypeError, match="must be of type Dict\\[str, str\\]"):
        opt_mod.validate({"runtime_env": {"env_vars": {"A": 1}}}, actor=False)
    with pytest.raises(TypeError, match="'runtime_env' must be"):
        opt_mod.validate({"runtime_env": "x"}, actor=False)
    with pytest.raises(ValueError, match="cannot be specified at the same time"):
        opt_mod.validate_runtime_env({"pip": ["a"], "conda": "env"})


def test_assigned_resources_lose_their_bundle_names():
    from shoal.runtime_context import original_resources

    pg = "ab" * 18
    held = {f"CPU_group_0_{pg}": 1, f"custom_group_0_{pg}": 0.5,
            f"bundle_group_0_{pg}": 0.001}
    assert original_resources(held) == ({"CPU": 1.0, "custom": 0.5}, pg)
    assert original_resources({f"CPU_group_{pg}": 2}) == ({"CPU": 2.0}, pg)
    assert original_resources({"CPU": 1, "my_group_thing": 2}) == \
        ({"CPU": 1.0, "my_group_thing": 2.0}, None)


def test_dependency_error_wraps_the_original_cause():
    inner = RayTaskError("bad", "Traceback (most recent call last):\nValueError: boom",
                         ValueError("boom"))
    err = dependency_error(inner, "use")
    assert isinstance(err.cause, ValueError)
    text = str(err)
    assert text.startswith("ray::use()")
    assert DEPENDENCY_FAILED in text and "ray::bad()" in text and "ValueError: boom" in text
    assert isinstance(err.as_instanceof_cause(), ValueError)
    again = dependency_error(err, "outer")
    assert isinstance(again.cause, ValueError)  # the user's error, however deep
    system = dependency_error(WorkerCrashedError(), "use")
    assert isinstance(system.as_instanceof_cause(), WorkerCrashedError)


def test_job_config_keeps_what_it_is_given():
    from shoal.job_config import JobConfig

    jc = JobConfig(ray_namespace="ns", metadata={"a": "b"}, runtime_env={"env_vars": {}})
    jc.set_metadata("c", "d")
    assert jc.ray_namespace == "ns" and jc.metadata == {"a": "b", "c": "d"}
    assert JobConfig.from_json({"ray_namespace": "x"}).ray_namespace == "x"
    with pytest.raises(TypeError, match="code search path"):
        JobConfig(code_search_path="not-a-list")
    with pytest.raises(ValueError, match="Default actor lifetime"):
        JobConfig(default_actor_lifetime="forever")


def test_checker_agrees_with_inspect_on_many_calls():
    import inspect
    import itertools

    def k(a, b=1, /, c=2, *args, d, e=3, **kw):
        return a

    def plain(a, b, c=1):
        return a

    for fn in (f, g, h, k, plain):
        chk = signature.checker(signature.describe(fn))
        names = ["a", "b", "c", "d", "e", "must", "key", "zz"]
        for n in range(5):
            for r in range(3):
                for kws in itertools.combinations(names, r):
                    args, kwargs = tuple(range(n)), dict.fromkeys(kws, 0)
                    try:
                        inspect.signature(fn).bind(*args, **kwargs)
                        expected = None
                    except TypeError as e:
                        expected = str(e)
                    try:
                        chk.check(args, kwargs)
                        got = None
                    except TypeError as e:
                        got = str(e)
                    assert got == expected, (fn.__name__, args, kwargs)


def test_runtime_env_class_is_a_validated_dict():
    from shoal.runtime_env import RuntimeEnv, RuntimeEnvConfig

    env = RuntimeEnv(env_vars={"A": "1"})
    assert env == {"env_vars": {"A": "1"}} and env.env_vars() == {"A": "1"}
    assert RuntimeEnv.deserialize(env.serialize()) == env
    with pytest.raises(TypeError, match="Dict\\[str, str\\]"):
        RuntimeEnv(env_vars={"A": 1})
    assert RuntimeEnvConfig()["setup_timeout_seconds"] == 600
    with pytest.raises(ValueError, match="setup_timeout_seconds"):
        RuntimeEnvConfig(setup_timeout_seconds=0)
    opt_mod.validate({"runtime_env": env}, actor=False)
