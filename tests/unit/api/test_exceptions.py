"""Unit tests for shoal.exceptions (Ray-compatible error types)."""

from __future__ import annotations

import logging
import pickle
import threading
import traceback

import cloudpickle
import pytest

import shoal.exceptions as ex
from shoal._private.runtime.error_base import _dual_class

PICKLERS = [pytest.param(pickle, id="pickle"), pytest.param(cloudpickle, id="cloudpickle")]


def roundtrip(obj, pickler=pickle):
    return pickler.loads(pickler.dumps(obj))


def task_error(exc: BaseException, function_name: str = "my_task", **kwargs) -> ex.RayTaskError:
    """Raise ``exc`` for real and wrap it the way a worker would."""
    try:
        raise exc
    except BaseException as e:
        return ex.RayTaskError(function_name, traceback.format_exc(), e, **kwargs)


# --------------------------------------------------------------------------- test exception types


class CustomError(Exception):
    """Extra fields and an __init__ whose signature does not match ``args``."""

    def __init__(self, code: int, detail: str, *, retryable: bool = False) -> None:
        super().__init__(f"error {code}: {detail}")
        self.code = code
        self.detail = detail
        self.retryable = retryable

    def describe(self) -> str:
        return f"{self.code}/{self.detail}"


class SlottedError(Exception):
    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


class FinalError(Exception):
    """Refuses to be subclassed through __init_subclass__."""

    def __init_subclass__(cls, **kwargs):
        raise TypeError("FinalError cannot be subclassed")


class _NoSubclassMeta(type):
    def __new__(mcls, name, bases, namespace, **kwargs):
        if any(isinstance(base, _NoSubclassMeta) for base in bases):
            raise TypeError("classes of this metaclass are final")
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class MetaFinalError(Exception, metaclass=_NoSubclassMeta):
    pass


# --------------------------------------------------------------------------- hierarchy

EXPECTED_BASES = {
    "RayError": (Exception,),
    "CrossLanguageError": ("RayError",),
    "TaskCancelledError": ("RayError",),
    "RayTaskError": ("RayError",),
    "LocalRayletDiedError": ("RayError",),
    "WorkerCrashedError": ("RayError",),
    "RayActorError": ("RayError",),
    "ActorDiedError": ("RayActorError",),
    "ActorUnavailableError": ("RayActorError",),
    "RaySystemError": ("RayError",),
    "AuthenticationError": ("RayError",),
    "UserCodeException": ("RayError",),
    "ObjectStoreFullError": ("RayError",),
    "OutOfDiskError": ("RayError",),
    "OutOfMemoryError": ("RayError",),
    "NodeDiedError": ("RayError",),
    "RpcError": ("RayError",),
    "ObjectLostError": ("RayError",),
    "ObjectFetchTimedOutError": ("ObjectLostError",),
    "ReferenceCountingAssertionError": ("ObjectLostError", AssertionError),
    "ObjectFreedError": ("ObjectLostError",),
    "OwnerDiedError": ("ObjectLostError",),
    "ObjectReconstructionFailedError": ("ObjectLostError",),
    "ObjectReconstructionFailedMaxAttemptsExceededError": ("ObjectLostError",),
    "ObjectReconstructionFailedLineageEvictedError": ("ObjectLostError",),
    "GetTimeoutError": ("RayError", TimeoutError),
    "PlasmaObjectNotAvailable": ("RayError",),
    "AsyncioActorExit": ("RayError",),
    "RuntimeEnvSetupError": ("RayError",),
    "TaskPlacementGroupRemoved": ("RayError",),
    "ActorPlacementGroupRemoved": ("RayError",),
    "PendingCallsLimitExceeded": ("RayError",),
    "TaskUnschedulableError": ("RayError",),
    "ActorUnschedulableError": ("RayError",),
    "ObjectRefStreamEndOfStreamError": ("RayError",),
    "StreamingGeneratorReplayInconsistentError": ("RaySystemError",),
    "OufOfBandObjectRefSerializationException": ("RayError",),
    "RayChannelError": ("RaySystemError",),
    "RayChannelTimeoutError": ("RayChannelError", TimeoutError),
    "RayCgraphCapacityExceeded": ("RaySystemError",),
    "RayDirectTransportError": ("RaySystemError",),
    "UnserializableException": ("RayError",),
    "ActorAlreadyExistsError": (ValueError, "RayError"),
    "ActorHandleNotFoundError": (ValueError, "RayError"),
}


def _resolve(base):
    return getattr(ex, base) if isinstance(base, str) else base


@pytest.mark.parametrize("name", sorted(EXPECTED_BASES))
def test_hierarchy_matches_ray(name):
    cls = getattr(ex, name)
    for base in EXPECTED_BASES[name]:
        assert issubclass(cls, _resolve(base)), (name, base)
    assert issubclass(cls, Exception)
    if name != "RayError":
        assert issubclass(cls, ex.RayError)


def test_all_lists_every_public_error():
    public = {
        n for n, v in vars(ex).items()
        if isinstance(v, type) and issubclass(v, BaseException) and not n.startswith("_")
    }
    assert public == set(EXPECTED_BASES)
    assert set(ex.__all__) == public | {"RAY_EXCEPTION_TYPES"}
    assert all(hasattr(ex, n) for n in ex.__all__)
    assert all(issubclass(t, ex.RayError) for t in ex.RAY_EXCEPTION_TYPES)


def test_get_timeout_error_is_builtin_timeout_error():
    assert issubclass(ex.GetTimeoutError, TimeoutError)
    with pytest.raises(TimeoutError, match="took too long"):
        raise ex.GetTimeoutError("get took too long")
    err = roundtrip(ex.GetTimeoutError("get took too long"))
    assert isinstance(err, TimeoutError) and str(err) == "get took too long"


def test_actor_died_error_is_ray_actor_error():
    with pytest.raises(ex.RayActorError):
        raise ex.ActorDiedError()
    assert issubclass(ex.ActorUnavailableError, ex.RayActorError)
    assert not issubclass(ex.ActorUnavailableError, ex.ActorDiedError)


# --------------------------------------------------------------------------- pickling


def _samples():
    rte = ex.RayTaskError("f", "Traceback (most recent call last):\nValueError: x", ValueError("x"))
    return [
        ex.RayError("generic"),
        ex.CrossLanguageError("raised in Java"),
        ex.TaskCancelledError("task-1", error_message="by user"),
        ex.TaskCancelledError(),
        rte,
        ex.LocalRayletDiedError(),
        ex.WorkerCrashedError(),
        ex.RayActorError("abcd", "boom", actor_init_failed=True, preempted=True),
        ex.ActorDiedError(),
        ex.ActorDiedError("the actor was killed", actor_id="ff01"),
        ex.ActorDiedError(rte),
        ex.ActorDiedError({"class_name": "Counter", "actor_id": b"\x01\x02", "pid": 42}),
        ex.ActorUnavailableError("connection lost", b"\xab\xcd"),
        ex.RaySystemError("raylet killed", "tb text"),
        ex.AuthenticationError("token mismatch"),
        ex.UserCodeException("user failure"),
        ex.ObjectStoreFullError("store is full"),
        ex.OutOfDiskError("disk is full"),
        ex.OutOfMemoryError("node is out of memory"),
        ex.NodeDiedError("node 1 died"),
        ex.RpcError("unavailable", rpc_code=14),
        ex.ObjectLostError("00ff", "owner-addr", "created at main.py:3"),
        ex.ObjectFetchTimedOutError("00ff"),
        ex.ReferenceCountingAssertionError("00ff", call_site="x.py:1"),
        ex.ObjectFreedError("00ff"),
        ex.OwnerDiedError("00ff", owner_address="10.0.0.2:1234"),
        ex.ObjectReconstructionFailedError("00ff", reason="PUT", reason_message="made by put"),
        ex.ObjectReconstructionFailedMaxAttemptsExceededError("00ff"),
        ex.ObjectReconstructionFailedLineageEvictedError("00ff"),
        ex.GetTimeoutError("timed out"),
        ex.PlasmaObjectNotAvailable(),
        ex.AsyncioActorExit(),
        ex.RuntimeEnvSetupError("pip failed"),
        ex.TaskPlacementGroupRemoved(),
        ex.ActorPlacementGroupRemoved(),
        ex.PendingCallsLimitExceeded("too many calls"),
        ex.TaskUnschedulableError(error_message="node is dead"),
        ex.ActorUnschedulableError("node is dead"),
        ex.ObjectRefStreamEndOfStreamError(),
        ex.StreamingGeneratorReplayInconsistentError("3 != 4"),
        ex.OufOfBandObjectRefSerializationException("ref pickled"),
        ex.RayChannelError("channel closed"),
        ex.RayChannelTimeoutError("channel timed out"),
        ex.RayCgraphCapacityExceeded("buffer full"),
        ex.RayDirectTransportError("transfer failed"),
        ex.UnserializableException("Traceback ...\nBadError: x"),
        ex.ActorAlreadyExistsError("actor 'a' exists"),
        ex.ActorHandleNotFoundError("no such actor"),
    ]


def _comparable(value):
    if isinstance(value, BaseException):
        return (type(value), _comparable(value.args), _comparable(getattr(value, "__dict__", {})))
    if isinstance(value, tuple):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def test_every_class_has_a_pickling_sample():
    assert {type(e).__name__ for e in _samples()} == set(EXPECTED_BASES)


@pytest.mark.parametrize("pickler", PICKLERS)
@pytest.mark.parametrize("err", _samples(), ids=lambda e: type(e).__name__)
def test_pickle_roundtrip_keeps_fields(err, pickler):
    copy = roundtrip(err, pickler)
    assert type(copy) is type(err)
    assert _comparable(copy) == _comparable(err)
    assert str(copy) == str(err)
    assert copy is not err


# --------------------------------------------------------------------------- messages


def test_object_lost_errors_name_the_object():
    for cls in (ex.ObjectLostError, ex.ObjectFetchTimedOutError, ex.OwnerDiedError,
                ex.ObjectFreedError, ex.ReferenceCountingAssertionError,
                ex.ObjectReconstructionFailedError,
                ex.ObjectReconstructionFailedMaxAttemptsExceededError,
                ex.ObjectReconstructionFailedLineageEvictedError):  # fmt: skip
        err = cls("c0ffee")
        assert "c0ffee" in str(err)
        assert (err.object_ref_hex, err.owner_address, err.call_site) == ("c0ffee", "", "")
    err = ex.ObjectLostError("c0ffee", b"\x00", "main.py:12")
    assert "main.py:12" in str(err) and err.owner_address == b"\x00"
    assert "[PUT] made by put" in str(
        ex.ObjectReconstructionFailedError("c0ffee", reason="PUT", reason_message="made by put")
    )


def test_message_errors():
    assert ex.ObjectStoreFullError("cannot put 1GiB").message == "cannot put 1GiB"
    assert str(ex.ObjectStoreFullError("cannot put 1GiB")).startswith("cannot put 1GiB")
    assert str(ex.OutOfMemoryError("task killed: node at 96%")) == "task killed: node at 96%"
    assert ex.OutOfMemoryError("x").message == "x"
    assert str(ex.NodeDiedError("node gone")) == "node gone"
    assert "not schedulable: dead node" in str(ex.TaskUnschedulableError("dead node"))
    assert "actor is not schedulable" in str(ex.ActorUnschedulableError("dead node"))
    assert "Task: t1 was cancelled." in str(ex.TaskCancelledError("t1"))
    assert str(ex.TaskCancelledError())
    assert str(ex.RaySystemError("oops", "tb")) == "System error: oops\ntraceback: tb"
    assert "pip failed" in str(ex.RuntimeEnvSetupError("pip failed"))
    assert "token mismatch" in str(ex.AuthenticationError("token mismatch"))


def test_actor_died_error_variants():
    plain = ex.ActorDiedError()
    assert plain.error_msg == str(plain) == ex.ActorDiedError.BASE_ERROR_MSG
    assert plain.actor_id is None and not plain.actor_init_failed and not plain.preempted

    msg = ex.ActorDiedError("killed by ray.kill", actor_id="aa11")
    assert str(msg) == msg.error_msg == "killed by ray.kill" and msg.actor_id == "aa11"

    init_err = task_error(RuntimeError("bad init"), "Counter.__init__", actor_id="bb22")
    died = ex.ActorDiedError(init_err)
    assert died.actor_init_failed and died.actor_id == "bb22"
    assert "bad init" in died.error_msg
    assert ex.RayActorError.from_task_error(init_err).actor_init_failed

    ctx = ex.ActorDiedError(
        {"class_name": "Counter", "actor_id": b"\xaa", "pid": 7, "node_ip_address": "10.1.1.1",
         "error_message": "worker exited", "preempted": True}
    )  # fmt: skip
    assert ctx.actor_id == "aa" and ctx.preempted
    for part in ("Counter", "pid: 7", "10.1.1.1", "worker exited"):
        assert part in ctx.error_msg


def test_actor_unavailable_error():
    err = ex.ActorUnavailableError("restarting", b"\x12\x34")
    assert err.actor_id == "1234" and "restarting" in str(err)
    assert ex.ActorUnavailableError("x", "abc").actor_id == "abc"


# --------------------------------------------------------------------------- RayTaskError


def test_ray_task_error_str_shows_function_pid_ip_and_traceback():
    err = task_error(ValueError("bad value"), "compute", pid=1234, ip="10.0.0.7")
    text = str(err)
    assert text.splitlines()[0] == "ray::compute() (pid=1234, ip=10.0.0.7)"
    assert "ValueError: bad value" in text
    assert 'in task_error' in text  # the frame of the remote traceback
    assert "Traceback (most recent call last)" not in text
    assert err.function_name == "compute" and err.pid == 1234 and err.ip == "10.0.0.7"
    assert isinstance(err.cause, ValueError)


def test_ray_task_error_defaults_and_actor_info():
    err = ex.RayTaskError("f", "", KeyError("k"))
    assert err.ip is None and err.pid is not None
    assert str(err).splitlines()[0] == f"ray::f() (pid={err.pid})"
    assert "KeyError" in str(err)  # no traceback text: the cause is shown instead
    actor = ex.RayTaskError("A.m", "tb", None, pid=1, actor_repr="A(1)", actor_id="cafe")
    assert "actor_id=cafe" in str(actor) and "repr=A(1)" in str(actor)
    assert actor.actor_id == "cafe"


def test_ray_task_error_hides_internal_frames():
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/site-packages/shoal/_private/worker.py", line 10, in run\n'
        "    result = fn()\n"
        '  File "/app/main.py", line 3, in fn\n'
        "    raise ValueError('x')\n"
        "ValueError: x\n"
    )
    text = str(ex.RayTaskError("fn", tb, ValueError("x"), pid=1))
    assert "shoal/_private" not in text and "result = fn()" not in text
    assert '/app/main.py", line 3' in text and "raise ValueError('x')" in text


@pytest.mark.parametrize("pickler", PICKLERS)
def test_ray_task_error_pickles_with_its_cause(pickler):
    err = task_error(ValueError("bad"), "f", ip="1.2.3.4", actor_repr="A()", actor_id="id")
    copy = roundtrip(err, pickler)
    assert type(copy) is ex.RayTaskError
    assert copy.function_name == "f" and copy.traceback_str == err.traceback_str
    assert (copy.pid, copy.ip, copy.actor_repr, copy.actor_id) == (err.pid, "1.2.3.4", "A()", "id")
    assert type(copy.cause) is ValueError and copy.cause.args == ("bad",)
    assert str(copy) == str(err)
    assert isinstance(copy.as_instanceof_cause(), ValueError)


@pytest.mark.parametrize("pickler", PICKLERS)
def test_ray_task_error_pickles_cause_with_custom_init(pickler):
    # Default pickling would call CustomError("error 3: boom") and fail.
    err = task_error(CustomError(3, "boom", retryable=True))
    copy = roundtrip(err, pickler)
    assert type(copy.cause) is CustomError
    assert (copy.cause.code, copy.cause.detail, copy.cause.retryable) == (3, "boom", True)
    assert copy.cause.args == ("error 3: boom",)
    assert copy.args[2] is copy.cause


def test_unserializable_cause_is_replaced(caplog):
    class LockedError(Exception):
        def __init__(self):
            super().__init__("locked")
            self.lock = threading.Lock()

    with caplog.at_level(logging.WARNING, logger="shoal.exceptions"):
        err = task_error(LockedError())
    assert type(err.cause) is ex.RayError
    assert "isn't serializable" in str(err.cause) and "LockedError" in str(err.cause)
    assert "isn't serializable" in caplog.text
    assert type(roundtrip(err).cause) is ex.RayError


# --------------------------------------------------------------------------- as_instanceof_cause


def test_as_instanceof_cause_value_error():
    err = task_error(ValueError("bad value"), "compute", ip="10.0.0.7")
    dual = err.as_instanceof_cause()
    assert isinstance(dual, ex.RayTaskError) and isinstance(dual, ValueError)
    assert type(dual).__name__ == "RayTaskError(ValueError)"
    assert dual.cause is err.cause
    assert dual.traceback_str == err.traceback_str and dual.function_name == "compute"
    assert str(dual) == str(err)
    assert "ValueError: bad value" in str(dual)
    assert dual.args == ("bad value",)
    with pytest.raises(ValueError, match="bad value"):
        raise dual
    try:
        raise dual
    except ValueError as caught:  # the user-facing contract
        assert caught is dual


def test_as_instanceof_cause_caches_the_class_per_cause_type():
    first = task_error(ValueError("a")).as_instanceof_cause()
    second = task_error(ValueError("b")).as_instanceof_cause()
    other = task_error(KeyError("c")).as_instanceof_cause()
    assert type(first) is type(second)
    assert type(other) is not type(first) and isinstance(other, KeyError)
    assert type(first) is _dual_class(ValueError)


def test_as_instanceof_cause_custom_exception():
    err = task_error(CustomError(7, "disk", retryable=True), "store")
    dual = err.as_instanceof_cause()
    assert isinstance(dual, CustomError) and isinstance(dual, ex.RayTaskError)
    assert (dual.code, dual.detail, dual.retryable) == (7, "disk", True)
    assert dual.describe() == "7/disk"  # methods of the cause class work on the copy
    assert dual.args == ("error 7: disk",)
    assert dual.cause is err.cause
    assert "ray::store()" in str(dual) and "CustomError: error 7: disk" in str(dual)
    with pytest.raises(CustomError) as info:
        raise dual
    assert info.value.code == 7


def test_as_instanceof_cause_keeps_builtin_and_slot_fields():
    dual = task_error(FileNotFoundError(2, "No such file", "/data/x")).as_instanceof_cause()
    assert isinstance(dual, FileNotFoundError) and isinstance(dual, OSError)
    assert (dual.errno, dual.strerror, dual.filename) == (2, "No such file", "/data/x")
    slotted = task_error(SlottedError("tok")).as_instanceof_cause()
    assert isinstance(slotted, SlottedError) and slotted.token == "tok"


@pytest.mark.parametrize("cause_cls", [FinalError, MetaFinalError])
def test_as_instanceof_cause_falls_back_when_cause_cannot_be_subclassed(cause_cls, caplog):
    err = task_error(cause_cls("nope"))
    with caplog.at_level(logging.WARNING, logger="shoal.exceptions"):
        result = err.as_instanceof_cause()
    assert result is err
    assert isinstance(result.cause, cause_cls)
    assert "nope" in str(result)
    assert "can't be combined" in caplog.text
    with pytest.raises(TypeError):
        err.make_dual_exception_instance()
    assert err.as_instanceof_cause() is err  # the failure is cached, still falls back


def test_as_instanceof_cause_returns_self_for_generic_causes():
    err = task_error(Exception("plain"))
    assert err.as_instanceof_cause() is err
    assert ex.RayTaskError("f", "tb", None).as_instanceof_cause().cause is None


def test_as_instanceof_cause_nested_task_errors():
    inner = task_error(CustomError(1, "inner"), "inner_task").as_instanceof_cause()
    outer = task_error(inner, "outer_task")
    dual = outer.as_instanceof_cause()
    assert isinstance(dual, CustomError) and dual.code == 1
    assert dual.cause is outer.cause
    assert str(dual).startswith("ray::outer_task()")
    assert type(dual) is type(inner)


def test_as_instanceof_cause_exception_group():
    group = ExceptionGroup("several", [ValueError("v"), KeyError("k")])
    dual = task_error(group).as_instanceof_cause()
    assert isinstance(dual, ExceptionGroup) and isinstance(dual, ex.RayTaskError)
    matched = []
    try:
        raise dual
    except* ValueError as eg:
        matched.append(eg.exceptions)
    except* KeyError:
        pass
    assert matched and isinstance(matched[0][0], ValueError)


@pytest.mark.parametrize("pickler", PICKLERS)
def test_dual_instance_pickles(pickler):
    dual = task_error(CustomError(5, "x"), "f").as_instanceof_cause()
    copy = roundtrip(dual, pickler)
    assert type(copy) is type(dual)
    assert isinstance(copy, CustomError) and copy.code == 5
    assert str(copy) == str(dual)


def test_fixed_message_errors_accept_an_optional_message():
    assert "worker died unexpectedly" in str(ex.WorkerCrashedError())
    assert str(ex.WorkerCrashedError("task f: worker killed")) == "task f: worker killed"
    assert "raylet" in str(ex.LocalRayletDiedError())
    assert "placement group of this task" in str(ex.TaskPlacementGroupRemoved())
    assert "placement group of this actor" in str(ex.ActorPlacementGroupRemoved())
    assert str(ex.RayError()) == "" and str(ex.RayError("x")) == "x"


def test_public_classes_are_the_private_ones_named_as_public():
    # Defined under shoal._private (the runtime raises them without importing a public
    # module); shoal.exceptions re-exports the same objects under its own name.
    from shoal._private.runtime import errors

    for name in ex.__all__:
        assert getattr(ex, name) is getattr(errors, name)
        if name != "RAY_EXCEPTION_TYPES":
            assert getattr(ex, name).__module__ == "shoal.exceptions"
    dual = type(task_error(ValueError("a")).as_instanceof_cause())
    assert dual.__module__ == "shoal.exceptions"
    assert repr(ex.RayError("x")) == "RayError('x')"
    data = pickle.dumps(ex.RayError("x"))
    assert b"shoal.exceptions" in data and b"runtime.errors" not in data
