"""The errors' foundation: :class:`RayError`, its pickling, and :class:`RayTaskError` with
the dynamic ``RayTaskError(<Cause>)`` classes that ``get`` raises.

The error classes live under ``_private`` so that the runtime and the workers can raise them
without importing a public module; :mod:`shoal.exceptions` re-exports the very same class
objects, and each class names that module as its ``__module__`` (see :func:`publish`), so
reprs, tracebacks, ``except ray.exceptions.X`` and pickles by reference read as before.
Errors cross process boundaries, so every class pickles without re-running ``__init__``: it
is rebuilt from its class, ``args`` and ``__dict__``, which keeps all fields whatever the
constructor signature.
"""

from __future__ import annotations

import copyreg
import logging
import os
import types
from typing import Any

# The public module the error classes are shown (and pickled) under.
PUBLIC_MODULE = "shoal.exceptions"

logger = logging.getLogger(PUBLIC_MODULE)


def publish(*classes: type) -> None:
    """Name :data:`PUBLIC_MODULE` as the classes' module, where Ray users import them from."""
    for cls in classes:
        cls.__module__ = PUBLIC_MODULE


def _rebuild_exception(cls: type, args: tuple, state: dict | None) -> BaseException:
    """Recreate an exception from class, ``args`` and ``__dict__``, skipping ``__init__``."""
    try:
        obj = cls.__new__(cls, *args)
    except Exception:
        obj = cls.__new__(cls)
    try:
        obj.args = args
    except Exception:
        pass
    if state:
        obj.__dict__.update(state)
    return obj


class _PortableException:
    """Pickles a foreign exception so that unpickling never calls its ``__init__``.

    Default exception pickling calls ``cls(*args)``, which fails for classes whose
    ``__init__`` takes other arguments than those stored in ``args``.
    """

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple:
        exc = self.exc
        return _rebuild_exception, (type(exc), exc.args, dict(getattr(exc, "__dict__", {})))


def _portable(value: Any, memo: dict[int, _PortableException]) -> Any:
    cls = type(value)
    if (
        isinstance(value, BaseException)
        and cls.__reduce__ is BaseException.__reduce__
        and cls.__reduce_ex__ is BaseException.__reduce_ex__
        and cls.__setstate__ is BaseException.__setstate__
        and cls not in copyreg.dispatch_table
    ):
        return memo.setdefault(id(value), _PortableException(value))
    return value


class RayError(Exception):
    """Base class of every error raised by the framework itself."""

    _default_msg = ""  # shown by str() when the error was created without a message

    def __str__(self) -> str:
        return super().__str__() or self._default_msg

    def __reduce__(self) -> tuple:
        memo: dict[int, _PortableException] = {}
        args = tuple(_portable(a, memo) for a in self.args)
        state = {k: _portable(v, memo) for k, v in self.__dict__.items()}
        return _rebuild_exception, (type(self), args, state)


class CrossLanguageError(RayError):
    """An error raised by a task or actor written in another language (carries a message)."""


class TaskCancelledError(RayError):
    """The task, or a task it depends on, was cancelled (e.g. by ``cancel()``)."""

    def __init__(self, task_id: Any = None, error_message: str | None = None) -> None:
        self.task_id = task_id
        self.error_message = error_message

    def __str__(self) -> str:
        parts = [f"Task: {self.task_id} was cancelled."] if self.task_id is not None else []
        if self.error_message:
            parts.append(self.error_message)
        return " ".join(parts) or "This task or one of its dependencies was cancelled."


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle as pickler
    except ImportError:  # pragma: no cover - cloudpickle is a declared dependency
        import pickle as pickler
    return pickler.dumps(obj)


# Traceback frames of the framework's own machinery are hidden from users.
_INTERNAL_FRAME_MARKERS = ("shoal/_private/", "shoal\\_private\\")
_FIELD_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)
# Cause class -> its dual class, or the reason why one cannot be built.
_DUAL_CLASSES: dict[type, type | str] = {}


class RayTaskError(RayError):
    """A remote task or actor method raised an exception while running.

    The error is stored as the task's result; ``get`` raises
    :meth:`as_instanceof_cause`, which is also an instance of the original
    exception's class, so ``except ValueError`` still matches.

    Attributes:
        function_name: Name of the task or method that failed.
        traceback_str: Formatted traceback captured in the worker.
        cause: The exception raised by user code (replaced by a plain
            :class:`RayError` if it cannot be serialized).
    """

    def __init__(
        self, function_name: str, traceback_str: str, cause: BaseException | None,
        proctitle: str | None = None, pid: int | None = None, ip: str | None = None,
        actor_repr: str | None = None, actor_id: str | None = None,
    ) -> None:  # fmt: skip
        self.function_name = function_name
        self.traceback_str = traceback_str or ""
        self.proctitle = proctitle or f"ray::{function_name}"
        self.pid = pid if pid is not None else os.getpid()
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = self._actor_id = actor_id
        self.cause = cause
        if cause is not None:
            try:
                _dumps(cause)
            except Exception as e:
                name = f"{type(cause).__module__}.{type(cause).__qualname__}"
                logger.warning("The cause of a RayTaskError (%s) isn't serializable: %s", name, e)
                self.cause = RayError(
                    f"Exception {name} isn't serializable: {e}\n"
                    f"Original exception:\n{self.traceback_str}"
                )
        self.args = (
            function_name, traceback_str, self.cause, proctitle, pid, ip, actor_repr, actor_id
        )

    def _user_cause(self) -> Any:
        cause = self.cause
        while isinstance(cause, RayTaskError):  # a task re-raised another task's error
            cause = cause.cause
        return cause

    def make_dual_exception_instance(self) -> RayTaskError:
        """Return an error that is an instance of RayTaskError *and* of the cause's class.

        Raises TypeError if the cause's class cannot be subclassed.
        """
        user = self._user_cause()
        if not isinstance(user, BaseException):
            raise TypeError(f"the cause {user!r} is not an exception")
        dual_cls = _dual_class(type(user))
        try:
            try:
                obj = dual_cls.__new__(dual_cls, *user.args)
            except Exception:
                obj = dual_cls.__new__(dual_cls)
        except Exception as e:
            raise TypeError(f"cannot instantiate {dual_cls.__name__}: {e}") from None
        obj.__dict__.update(self.__dict__)
        obj.__dict__.update(getattr(user, "__dict__", {}))  # the user's own fields win
        obj.__dict__.update(cause=self.cause, _ray_task_error=self)
        for klass in type(user).__mro__[:-2]:  # C-level fields and slots, e.g. OSError.errno
            for name, attr in vars(klass).items():
                if not name.startswith("__") and isinstance(attr, _FIELD_DESCRIPTORS):
                    try:
                        setattr(obj, name, getattr(user, name))
                    except Exception:
                        pass
        return obj

    def as_instanceof_cause(self) -> RayTaskError:
        """Return an error matching ``except <cause class>``, or ``self`` if impossible.

        The result subclasses both RayTaskError and the cause's class, carries the
        cause's attributes, and its ``str()`` shows the remote traceback.
        """
        user = self._user_cause()
        if not isinstance(user, BaseException) or isinstance(self, type(user)):
            return self
        try:
            return self.make_dual_exception_instance()
        except Exception as e:
            logger.warning(
                "Exception type %s can't be combined with RayTaskError, so it is raised as a "
                "plain RayTaskError; `.cause` holds the original error (%s).",
                type(user).__qualname__, e,
            )  # fmt: skip
            return self

    def __str__(self) -> str:
        title = self.proctitle
        if self.function_name and self.function_name not in title:
            title = f"{title} {self.function_name}"
        details = [f"pid={self.pid}"] if self.pid is not None else []
        if self.ip:
            details.append(f"ip={self.ip}")
        if self.actor_repr:
            details += [f"actor_id={self._actor_id}", f"repr={self.actor_repr}"]
        out = [f"{title}() ({', '.join(details)})" if details else f"{title}()"]
        lines = self.traceback_str.lstrip("\n").rstrip().splitlines()
        if lines and lines[0].startswith("Traceback "):
            lines = lines[1:]  # replaced by the header line above
        hiding = False
        for line in lines:
            if line.startswith("  File ") and any(m in line for m in _INTERNAL_FRAME_MARKERS):
                hiding = True
            elif not (hiding and line.startswith("    ")):
                hiding = False
                out.append(line)
        if not lines and self.cause is not None:
            out.append(f"{type(self.cause).__name__}: {self.cause}")
        return "\n".join(out)


class _DualTaskError(RayTaskError):
    """Behaviour shared by the dynamic ``RayTaskError(<Cause>)`` classes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # instances are assembled by RayTaskError.make_dual_exception_instance

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes missing on the instance (e.g. the cause's slots).
        cause = self.__dict__.get("cause")
        if cause is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(cause, name)

    def __str__(self) -> str:
        inner = self.__dict__.get("_ray_task_error")
        return str(inner) if inner is not None else BaseException.__str__(self)

    def __reduce__(self) -> tuple:
        inner = self.__dict__.get("_ray_task_error")
        return (_restore_dual, (inner,)) if inner is not None else super().__reduce__()


def _restore_dual(task_error: RayTaskError) -> RayTaskError:
    return task_error.as_instanceof_cause()


def _dual_class(cause_cls: type) -> type:
    """Return the cached class ``RayTaskError(<cause_cls>)``; TypeError if impossible."""
    dual = _DUAL_CLASSES.get(cause_cls)
    if dual is None:
        name = f"RayTaskError({cause_cls.__name__})"

        def body(ns: dict[str, Any]) -> None:
            ns.update(__module__=PUBLIC_MODULE, __qualname__=name, _ray_dual_of=cause_cls)

        try:
            dual = types.new_class(name, (_DualTaskError, cause_cls), exec_body=body)
        except Exception as e:  # layout/MRO conflict, metaclass or __init_subclass__ refusal
            dual = f"{type(e).__name__}: {e}"
        _DUAL_CLASSES[cause_cls] = dual
    if isinstance(dual, str):
        raise TypeError(f"{cause_cls.__qualname__} cannot be subclassed ({dual})")
    return dual

def _init_message(self: Any, message: str = "") -> None:
    self.message = message
    BaseException.__init__(self, message)


def _str_with_hint(self: Any) -> str:
    return "\n".join(part for part in (self.message, self._hint) if part)


publish(RayError, CrossLanguageError, TaskCancelledError, RayTaskError)
