"""Unit tests for shoal._private.wire.serialization: out-of-band buffers and unpicklable-part hunting."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from shoal._private.wire import serialization as ser
from shoal.object_ref import ObjectRef


class Holder:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def __repr__(self):
        return "Holder()"


def _error_of(value) -> Exception:
    with pytest.raises(Exception) as info:  # noqa: B017 - whatever pickling raises
        ser.serialize(value)
    return info.value


def describe(value, what="the value") -> str:
    return ser.describe_unserializable(value, what, _error_of(value))


# --------------------------------------------------------------------------- round trips


def test_numpy_array_travels_out_of_band():
    arr = np.arange(100_000, dtype=np.float64)
    s = ser.serialize(arr)
    assert len(s.buffers) == 1
    assert s.buffers[0].nbytes == arr.nbytes
    assert len(s.meta) < 1000  # the data is not inside the pickle stream
    assert s.total_bytes == len(s.meta) + arr.nbytes
    back = ser.deserialize(s.meta, s.buffers)
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == arr.dtype


def test_deserialized_array_is_a_view_of_the_given_buffer():
    arr = np.arange(1000, dtype=np.int32)
    s = ser.serialize(arr)
    storage = bytearray(s.buffers[0])  # as if received into our own memory
    back = ser.deserialize(s.meta, [storage])
    storage[:4] = (12345).to_bytes(4, "little")
    assert back[0] == 12345  # no copy was made


def test_several_arrays_and_plain_objects_in_one_value():
    value = {"a": np.ones((3, 4), dtype=np.uint8), "b": [np.zeros(5), "text", 7],
             "c": np.arange(6).reshape(2, 3).T}  # non-contiguous: pickled in-band or copied
    s = ser.serialize(value)
    assert len(s.buffers) >= 2
    back = ser.deserialize(s.meta, s.buffers)
    np.testing.assert_array_equal(back["a"], value["a"])
    np.testing.assert_array_equal(back["b"][0], value["b"][0])
    assert back["b"][1:] == ["text", 7]
    np.testing.assert_array_equal(back["c"], value["c"])


def test_plain_values_need_no_buffers_and_load_with_stdlib_pickle():
    value = {"x": [1, 2.5, "s", b"bytes", None], "t": (1, 2)}
    s = ser.serialize(value)
    assert s.buffers == []
    assert pickle.loads(s.meta) == value
    assert ser.deserialize(s.meta, []) == value


def test_error_flag_is_carried():
    assert ser.serialize(ValueError("x"), is_error=True).is_error
    assert not ser.serialize(1).is_error


def test_lambdas_and_closures_serialize_by_value():
    k = 10
    s = ser.serialize(lambda x: x + k)
    assert ser.deserialize(s.meta, s.buffers)(5) == 15


def test_object_refs_inside_a_value_are_recorded():
    r1, r2 = ObjectRef(b"1" * 28, "owner-a"), ObjectRef(b"2" * 28, "owner-b")
    s = ser.serialize({"refs": [r1, (r2,)], "n": 1})
    assert s.contained == [r1, r2]
    assert ser.current_contained() is None  # collection ends with the call
    back = ser.deserialize(s.meta, s.buffers)
    assert back["refs"][0] == r1
    assert back["refs"][0].owner_address() == "owner-a"
    assert ser.serialize([1, 2]).contained == []


def test_collection_is_restored_after_a_failed_serialize():
    with pytest.raises(TypeError):
        ser.serialize([ObjectRef(b"1" * 28, "o"), threading.Lock()])
    assert ser.current_contained() is None


# --------------------------------------------------------------------------- explaining failures


def test_describe_names_an_attribute_holding_a_lock():
    msg = describe(Holder(name="ok", lock=threading.Lock()))
    assert msg.startswith("Could not serialize the value Holder()")
    assert "The offending field is value.lock " in msg
    assert "_thread.lock" in msg
    assert "TypeError" in msg


def test_describe_names_a_dict_entry():
    msg = describe({"fine": 1, "bad": threading.Lock()}, "argument 'cfg'")
    assert "Could not serialize argument 'cfg'" in msg
    assert "The offending field is value['bad'] " in msg


def test_describe_names_a_closure_variable():
    lock = threading.Lock()
    ok = 3

    def task(x):
        with lock:
            return x + ok

    msg = describe(task, "the function task")
    assert "The offending field is value (closure variable 'lock') " in msg
    assert "'ok'" not in msg


def test_describe_follows_nesting_to_the_innermost_field():
    value = [1, Holder(config={"locks": [threading.Lock()]})]
    msg = describe(value)
    assert "The offending field is value[1].config['locks'][0] " in msg
    path, leaf = ser.find_unserializable(value)
    assert path == "value[1].config['locks'][0]"
    assert leaf is value[1].config["locks"][0]


def test_describe_without_a_smaller_culprit_names_no_field():
    lock = threading.Lock()
    msg = describe(lock)
    assert "Could not serialize the value" in msg
    assert "offending field" not in msg


def test_describe_truncates_a_huge_repr():
    value = ["x" * 1000, threading.Lock()]
    msg = describe(value)
    assert "..." in msg
    assert "x" * 201 not in msg
    assert "value[1]" in msg


def test_functions_by_value_keep_their_file_and_lines_in_tracebacks():
    # Functions of a script are pickled by value; cloudpickle >= 3.1 would name their code
    # "<dynamic-code>", and remote tracebacks would lose the file and the source line.
    import traceback
    import types

    code = compile("def boom(n):\n    def inner():\n        raise ValueError('x')\n"
                   "    return [inner() for _ in range(n)]\n", __file__, "exec")
    ns: dict = {"__name__": "__main__"}
    exec(code, ns)
    boom = types.FunctionType(ns["boom"].__code__, {"__name__": "not_importable"}, "boom")
    fn = pickle.loads(ser.dumps_function(boom))
    assert fn.__code__.co_filename == __file__
    inner_codes = [c for c in fn.__code__.co_consts if isinstance(c, types.CodeType)]
    assert inner_codes and all(c.co_filename == __file__ for c in inner_codes)
    with pytest.raises(ValueError) as info:
        fn(1)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert [f.filename for f in frames[1:]] == [__file__] * (len(frames) - 1)
    assert frames[-1].lineno == 3
