"""The public API as Ray documents it: argument binding at ``.remote()``, refused
decorations, generators in get/wait, num_returns="dynamic", dependency failures, the
top-level names and the lower-level ``_remote``."""

from __future__ import annotations

import warnings

import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import gate_actor, shoal_cluster  # noqa: F401

pytestmark = pytest.mark.usefixtures("shoal_cluster")


# -- 1. arguments bound to the signature at submission ----------------------------------
@ray.remote
def takes(a, b=2, *, c):
    return a + b + c


def test_task_with_missing_or_unexpected_arguments_fails_at_remote():
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        takes.remote()
    with pytest.raises(TypeError, match="missing a required argument: 'c'"):
        takes.remote(1)
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'd'"):
        takes.remote(1, c=1, d=2)
    with pytest.raises(TypeError, match="too many positional arguments"):
        takes.options(num_cpus=0).remote(1, 2, 3, c=1)
    assert ray.get(takes.remote(1, c=3)) == 6


@ray.remote
class Sig:
    def __init__(self, x):
        self.x = x

    def add(self, y, *, z=0):
        return self.x + y + z

    @staticmethod
    def static(z):
        return z * 2

    @classmethod
    def klass(cls, w):
        return (cls.__name__, w)


@ray.remote
class NoInit:
    def ping(self):
        return "pong"


def test_actor_creation_and_methods_bind_their_arguments():
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        Sig.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        NoInit.remote(1)
    a = Sig.remote(1)
    with pytest.raises(TypeError, match="missing a required argument: 'y'"):
        a.add.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        a.add.remote(1, 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'q'"):
        a.add.options(num_returns=1).remote(1, q=2)
    assert ray.get(a.add.remote(2, z=3)) == 6
    assert ray.get(a.static.remote(4)) == 8
    assert ray.get(a.klass.remote(5)) == ("Sig", 5)


def test_handle_from_get_actor_checks_arguments_too():
    keep = Sig.options(name="sig-named").remote(1)
    h = ray.get_actor("sig-named")
    with pytest.raises(TypeError, match="missing a required argument: 'y'"):
        h.add.remote()
    assert ray.get(h.add.remote(1)) == 2
    ray.kill(keep)


@ray.remote
def call_handle(h):
    try:
        h.add.remote()
    except TypeError as e:
        return str(e)
    return "no error"


def test_handle_passed_to_a_task_checks_arguments_there():
    a = Sig.remote(1)
    assert ray.get(call_handle.remote(a)) == "missing a required argument: 'y'"


def test_every_actor_answers_ray_ready_and_ray_call():
    a = Sig.remote(10)
    assert ray.get(a.__ray_ready__.remote()) is True
    assert ray.get(a.__ray_call__.remote(lambda self, k: self.x + k, 5)) == 15


# -- 2. refused decorations and calls -------------------------------------------------
def test_async_def_cannot_be_a_remote_function():
    async def coro():
        return 1

    with pytest.raises(ValueError, match="'async def' should not be used for remote tasks"):
        ray.remote(coro)


def test_remote_with_empty_parentheses_or_positional_arguments_is_refused():
    with pytest.raises(AssertionError, match="The @ray.remote decorator must be applied "
                                             "either with no arguments and no parentheses"):
        ray.remote()
    with pytest.raises(AssertionError, match="must be applied either"):
        ray.remote(takes, 2)


def test_calling_remote_things_directly_says_what_to_do():
    with pytest.raises(TypeError) as info:
        Sig(1)
    assert str(info.value) == ("Actors cannot be instantiated directly. Instead of 'Sig()', "
                               "use 'Sig.remote()'.")
    with pytest.raises(TypeError) as info:
        takes(1, c=2)
    assert str(info.value) == (f"Remote functions cannot be called directly. Instead of "
                               f"running '{__name__}.takes()', try '{__name__}.takes.remote()'.")


def test_subclassing_an_actor_class_is_refused():
    from shoal.actor import ActorClassInheritanceException

    with pytest.raises(ActorClassInheritanceException, match="Inheriting from actor classes"):
        class Sub(Sig):  # noqa: F841
            pass


def test_oversized_function_is_refused_at_remote():
    blob = b"x" * (10**8 + 1)

    @ray.remote
    def huge():
        return len(blob)

    with pytest.raises(ValueError, match=r"The remote function .*huge is too large \(95 MiB > "
                                         r"FUNCTION_SIZE_ERROR_THRESHOLD=95 MiB\)"):
        huge.remote()

    @ray.remote
    class Huge:
        def size(self):
            return len(blob)

    with pytest.raises(ValueError, match="The actor Huge is too large"):
        Huge.remote()


# -- 5. wait/get with generators, dynamic returns ---------------------------------------
@ray.remote
def two_items(gate):
    yield 1
    ray.get(gate.wait.remote())
    yield 2


def test_wait_on_empty_list_returns_two_empty_lists():
    assert ray.wait([]) == ([], [])
    assert ray.wait([], num_returns=0) == ([], [])


def test_wait_takes_generators_ready_when_their_next_item_is():
    gate = gate_actor(ray).remote()
    gen = two_items.remote(gate)
    ready, not_ready = ray.wait([gen], timeout=30)
    assert ready == [gen] and not_ready == []
    assert ray.get(next(gen)) == 1
    assert ray.wait([gen], timeout=0) == ([], [gen])
    done = ray.put("x")
    ready, not_ready = ray.wait([gen, done], num_returns=1, timeout=0)
    assert ready == [done] and not_ready == [gen]
    ray.get(gate.open.remote())
    assert ray.wait([gen, done], num_returns=2, timeout=30) == ([gen, done], [])
    assert ray.get(next(gen)) == 2
    assert ray.wait([gen], timeout=30) == ([gen], [])  # ended: next() would not block
    with pytest.raises(StopIteration):
        next(gen)


def test_wait_and_get_refuse_what_ray_refuses():
    gen = two_items.remote(gate_actor(ray).remote())
    with pytest.raises(TypeError, match="got a single ray.ObjectRef or ray.ObjectRefGenerator"):
        ray.wait(gen)
    with pytest.raises(TypeError, match="got list containing <class 'int'>"):
        ray.wait([ray.put(1), 1])
    r = ray.put(1)
    with pytest.raises(ValueError, match="Wait requires a list of unique ray_waitables"):
        ray.wait([r, r])
    with pytest.raises(ValueError, match="num_returns cannot be greater"):
        ray.wait([r], num_returns=2)
    with pytest.raises(ValueError, match="must be nonnegative"):
        ray.wait([r], timeout=-1)
    with pytest.raises(ValueError, match="Invalid type of object refs"):
        ray.get(5)
    with pytest.raises(TypeError, match="Attempting to call `get` on the value"):
        ray.get([gen])


def test_get_of_a_generator_returns_it():
    gen = two_items.remote(gate_actor(ray).remote())
    assert ray.get(gen) is gen


@ray.remote
def count_to(n):
    yield from range(n)


def test_dynamic_num_returns_gives_one_ref_to_a_generator_of_refs():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dyn = ray.remote(num_returns="dynamic")(count_to._function)
        also = count_to.options(num_returns="dynamic")
    assert [x.category.__name__ for x in w] == ["RayDeprecationWarning"] * 2
    ref = dyn.remote(3)
    assert isinstance(ref, ray.ObjectRef)
    gen = ray.get(ref)
    assert isinstance(gen, ray.DynamicObjectRefGenerator)
    assert len(gen) == 3
    assert ray.get(list(gen)) == [0, 1, 2]
    assert ray.get(list(ray.get(also.remote(0)))) == []


@ray.remote
def sum_all(gen):
    return sum(ray.get(list(gen)))


def test_dynamic_generator_can_be_passed_on():
    dyn = count_to.options(num_returns="dynamic")
    assert ray.get(sum_all.remote(dyn.remote(4))) == 6
    assert ray.get(sum_all.remote(ray.get(dyn.remote(3)))) == 3


def test_dynamic_generator_error_is_its_last_item():
    @ray.remote(num_returns="dynamic")
    def fails_midway():
        yield 1
        raise KeyError("midway")

    refs = list(ray.get(fails_midway.remote()))
    assert len(refs) == 2 and ray.get(refs[0]) == 1
    with pytest.raises(KeyError):
        ray.get(refs[1])


def test_dynamic_task_whose_argument_failed_fails_its_ref():
    @ray.remote
    def bad():
        raise ValueError("upstream")

    dyn = count_to.options(num_returns="dynamic")
    with pytest.raises(ValueError):
        ray.get(dyn.remote(bad.remote()))


def test_dynamic_needs_a_generator_function():
    def plain():
        return 1

    with pytest.raises(ValueError, match="can only be used with generator functions"):
        ray.remote(num_returns="dynamic")(plain)


@ray.remote
class Gen:
    @ray.method(num_returns="dynamic")
    def items(self, n):
        yield from range(n)

    def plain_gen(self, n):
        yield from range(n)


def test_dynamic_actor_methods():
    g = Gen.remote()
    assert ray.get(list(ray.get(g.items.remote(3)))) == [0, 1, 2]
    with pytest.warns(DeprecationWarning):
        opts = g.plain_gen.options(num_returns="dynamic")
    assert ray.get(list(ray.get(opts.remote(2)))) == [0, 1]


# -- 6. a task whose argument failed --------------------------------------------------
@ray.remote
def boom():
    raise ValueError("boom")


@ray.remote
def passthrough(x):
    return x


def test_failed_argument_raises_rays_wrapper_around_the_cause():
    with pytest.raises(ValueError) as info:
        ray.get(passthrough.remote(passthrough.remote(boom.remote())))
    err = info.value
    assert isinstance(err, ex.RayTaskError)
    assert type(err).__name__ == "RayTaskError(ValueError)"
    assert isinstance(err.cause, ValueError) and str(err.cause) == "boom"
    text = str(err)
    assert text.startswith("ray::passthrough()")
    assert text.count("At least one of the input arguments for this task could not be "
                      "computed:") == 2
    assert "ray::boom()" in text and "ValueError: boom" in text
    assert "\nray.exceptions.RayTaskError: ray::passthrough()" in text  # Ray's very text


def test_dependency_failure_text_matches_rays_traceback_test():
    @ray.remote
    def f(a, b):
        pass

    @ray.remote
    def a(d):
        pass

    @ray.remote
    def b():
        raise ValueError("b failed")

    with pytest.raises(ValueError) as info:
        ray.get(f.remote(a.remote(b.remote()), b.remote()))
    import re

    text = re.sub(r"\(pid=\d+, ip=[^)]*\)", "(pid=XXX, ip=YYY)", str(info.value))
    text = re.sub(r'File ".*", line \d+', 'File "FILE", line ZZ', text)
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("^")]
    assert lines == [
        "ray::f() (pid=XXX, ip=YYY)",
        "  At least one of the input arguments for this task could not be computed:",
        "ray.exceptions.RayTaskError: ray::a() (pid=XXX, ip=YYY)",
        "  At least one of the input arguments for this task could not be computed:",
        "ray.exceptions.RayTaskError: ray::b() (pid=XXX, ip=YYY)",
        '  File "FILE", line ZZ, in b',
        '    raise ValueError("b failed")',
        "ValueError: b failed",
    ]


def test_failed_argument_of_an_actor_call_is_wrapped_likewise():
    a = Sig.remote(1)
    with pytest.raises(ValueError) as info:
        ray.get(a.add.remote(boom.remote()))
    assert "ray::Sig.add()" in str(info.value)
    assert "At least one of the input arguments" in str(info.value)


def test_failed_argument_of_an_actor_constructor_kills_the_actor():
    a = Sig.remote(boom.remote())
    with pytest.raises(ex.RayActorError) as info:
        ray.get(a.add.remote(1), timeout=60)
    assert "At least one of the input arguments" in str(info.value)


def test_system_error_of_an_argument_keeps_its_class():
    @ray.remote(max_retries=0)
    def crash():
        import os

        os._exit(1)

    with pytest.raises(ex.WorkerCrashedError) as info:
        ray.get(passthrough.remote(crash.remote()))
    assert isinstance(info.value, ex.RayTaskError)


# -- 7. names and the lower-level API ---------------------------------------------------
RAY_TOP_LEVEL = [
    "ActorClassID", "ActorID", "ClientBuilder", "DynamicObjectRefGenerator", "FunctionID",
    "JobID", "Language", "LoggingConfig", "NodeID", "ObjectID", "ObjectRef",
    "ObjectRefGenerator", "PlacementGroupID", "SCRIPT_MODE", "TaskID", "UniqueID",
    "WORKER_MODE", "WorkerID", "__version__", "_config", "actor", "available_resources",
    "cancel", "client", "cluster_resources", "get", "get_actor", "get_gpu_ids",
    "get_runtime_context", "init", "is_initialized", "java_actor_class", "java_function",
    "kill", "method", "nodes", "put", "remote", "shutdown", "timeline", "util", "wait",
    "exceptions", "cloudpickle", "job_config", "runtime_context", "remote_function",
]


def test_rays_top_level_names_exist():
    missing = [n for n in RAY_TOP_LEVEL if not hasattr(ray, n)]
    assert missing == []
    assert ray.ObjectID is ray.ObjectRef
    assert set(RAY_TOP_LEVEL) - {"cloudpickle", "job_config", "runtime_context",
                                 "remote_function", "exceptions"} <= set(dir(ray))
    import shoal.cloudpickle as pickle

    assert pickle.loads(pickle.dumps(lambda: 3))() == 3
    from shoal.job_config import JobConfig
    from shoal.runtime_context import get_runtime_context

    assert JobConfig().metadata == {}
    assert get_runtime_context().get_job_id() == ray.get_runtime_context().get_job_id()


def test_libraries_that_are_not_there_say_so():
    for name in ("data", "serve", "workflow"):
        with pytest.raises(AttributeError, match=f"Ray's '{name}' library is not part"):
            getattr(ray, name)
    with pytest.raises(AttributeError):
        ray.no_such_name  # noqa: B018
    with pytest.raises(ValueError, match="cross-language"):
        ray.java_function("A", "b")


def test_low_level_remote_takes_args_kwargs_and_options():
    assert ray.get(takes._remote(args=[1], kwargs={"c": 2}, num_cpus=0, max_retries=0)) == 5
    refs = passthrough._remote(args=[(1, 2)], num_returns=2)
    assert ray.get(refs) == [1, 2]
    a = Sig._remote(args=[3], kwargs={}, num_cpus=0, max_restarts=0, name="low-level",
                    namespace=None, lifetime=None)
    assert ray.get(a.add.remote(1)) == 4
    with pytest.raises(ValueError, match="Invalid option keyword"):
        takes._remote(args=[1], no_such_option=1)
    with pytest.raises(TypeError, match="missing a required argument"):
        Sig._remote(args=[], kwargs={})
    ray.kill(a)


def test_method_decorator_forms():
    @ray.remote
    class M:
        @ray.method
        def bare(self):
            return 1

        @ray.method(num_returns=2)
        def pair(self):
            return 1, 2

    m = M.remote()
    assert ray.get(m.bare.remote()) == 1
    assert ray.get(m.pair.remote()) == [1, 2]
    with pytest.raises(AssertionError, match="Unexpected keyword argument to @ray.method"):
        ray.method(bogus=1)


@ray.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


class Flaky(Exception):
    pass


@ray.remote(max_retries=1)
def flaky_gen(n, counter):
    for i in range(n):
        yield i
        if ray.get(counter.inc.remote()) == 1:  # the first run fails after one item
            raise Flaky("first run")


def test_generator_error_without_retry_is_the_last_item():
    refs = list(ray.get(flaky_gen.options(num_returns="dynamic").remote(3, Counter.remote())))
    assert len(refs) == 2 and ray.get(refs[0]) == 0
    with pytest.raises(Flaky):
        ray.get(refs[1])


def test_generator_error_in_retry_exceptions_reruns_the_task():
    dyn = flaky_gen.options(num_returns="dynamic", retry_exceptions=[Flaky])
    assert ray.get(list(ray.get(dyn.remote(3, Counter.remote())))) == [0, 1, 2]
    stream = flaky_gen.options(retry_exceptions=True).remote(3, Counter.remote())
    assert [ray.get(r) for r in stream] == [0, 1, 2]
    assert ray.get([r for r in flaky_gen.remote(2, Counter.remote())][:1]) == [0]


@ray.remote
class Owner:
    def make(self):
        return [ray.put("owned by the actor")]


def test_argument_whose_owner_died_is_wrapped_likewise():
    o = Owner.remote()
    [inner] = ray.get(o.make.remote())
    ray.kill(o)
    with pytest.raises(ex.RayActorError):
        ray.get(o.make.remote(), timeout=60)  # the owner is gone for sure
    with pytest.raises(ex.OwnerDiedError) as info:
        ray.get(passthrough.remote(inner), timeout=60)
    assert isinstance(info.value, ex.RayTaskError)
    assert "At least one of the input arguments" in str(info.value)
