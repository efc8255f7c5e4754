"""What an actor's code sees, as in Ray: the class name refers to the actor class and reaches
the user class's attributes, methods are found on the class, the built-in ``__ray_*__``
methods, and concurrency groups that do not hold each other up."""

from __future__ import annotations

import asyncio
import threading

import pytest

import shoal as ray
from shoal import exceptions as ex


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


@ray.remote
class TestActor:
    X = 42

    @staticmethod
    def static(v):
        return f"static {v}"

    @classmethod
    def cls_name(cls):
        return cls.__name__

    def class_attribute(self):
        return TestActor.X

    def static_method(self):
        return TestActor.static(1)

    def class_method(self):
        return TestActor.cls_name()

    def own_static(self):
        return self.static(2)


def test_class_name_inside_an_actor_reaches_the_user_class_attributes():
    t = TestActor.remote()
    assert ray.get(t.class_attribute.remote()) == 42
    assert ray.get(t.static_method.remote()) == "static 1"
    assert ray.get(t.class_method.remote()) == "TestActor"
    assert ray.get(t.own_static.remote()) == "static 2"


def test_actor_class_forwards_attributes_in_the_driver_too():
    assert TestActor.X == 42
    assert TestActor.static(3) == "static 3"
    with pytest.raises(AttributeError, match="nothing_here"):
        TestActor.nothing_here  # noqa: B018


def test_method_is_not_shadowed_by_an_instance_attribute_of_the_same_name():
    @ray.remote
    class Shadow:
        def __init__(self):
            self.value = "attribute"

        def value(self):  # noqa: F811 - the point of the test
            return "method"

        def attribute(self):
            return self.__dict__["value"]

    s = Shadow.remote()
    assert ray.get(s.value.remote()) == "method"
    assert ray.get(s.attribute.remote()) == "attribute"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_ray_ready_and_ray_call_builtins(kind):
    if kind == "sync":
        @ray.remote
        class Holder:
            def __init__(self):
                self.v = 7

            def get(self):
                return self.v
    else:
        @ray.remote
        class Holder:
            def __init__(self):
                self.v = 7

            async def get(self):
                return self.v

    h = Holder.remote()
    assert ray.get(h.__ray_ready__.remote(), timeout=30) is True
    assert ray.get(h.__ray_call__.remote(lambda self, d: self.v + d, 3)) == 10
    ray.get(h.__ray_call__.remote(lambda self: setattr(self, "v", 1)))
    assert ray.get(h.get.remote()) == 1


def test_ray_ready_of_an_actor_whose_init_failed_raises_actor_died_error():
    @ray.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("nope")

    with pytest.raises(ex.ActorDiedError, match="nope"):
        ray.get(Broken.remote().__ray_ready__.remote(), timeout=30)


def test_async_actor_group_blocked_by_sync_code_does_not_hold_up_other_groups():
    @ray.remote(concurrency_groups={"a": 1, "b": 1})
    class Groups:
        def __init__(self):
            self.ev = threading.Event()

        @ray.method(concurrency_group="a")
        async def block(self):
            self.ev.wait(30)  # blocks group a's event loop, not the others
            return threading.current_thread().name

        @ray.method(concurrency_group="b")
        async def release(self):
            await asyncio.sleep(0)
            self.ev.set()
            return threading.current_thread().name

        async def default(self):
            return threading.current_thread().name

    g = Groups.remote()
    ray.get(g.__ray_ready__.remote())
    blocked = g.block.remote()
    assert ray.wait([blocked], timeout=0.2)[1] == [blocked]
    assert ray.get(g.default.remote(), timeout=10) == "AsyncIO Thread: default"
    assert ray.get(g.release.remote(), timeout=10) == "AsyncIO Thread: b"
    assert ray.get(blocked, timeout=30) == "AsyncIO Thread: a"
    # the group option of a call overrides the method's
    assert ray.get(g.default.options(concurrency_group="b").remote(), timeout=10) == \
        "AsyncIO Thread: b"


def test_threaded_actor_group_blocked_does_not_hold_up_other_groups():
    @ray.remote(concurrency_groups={"a": 1, "b": 1})
    class Groups:
        def __init__(self):
            self.ev = threading.Event()

        @ray.method(concurrency_group="a")
        def block(self):
            return self.ev.wait(30)

        @ray.method(concurrency_group="b")
        def release(self):
            self.ev.set()

        def default(self):
            return "default"

    g = Groups.remote()
    blocked = g.block.remote()
    assert ray.get(g.default.remote(), timeout=10) == "default"
    ray.get(g.release.remote(), timeout=10)
    assert ray.get(blocked, timeout=30) is True
