"""Smaller names of Ray's top level: worker modes, ``Language``, ``LoggingConfig`` and the
cross-language entry points (which shoal, running Python workers only, refuses clearly)."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field


class Language(enum.Enum):
    """The language of a function or actor; shoal runs Python only."""

    PYTHON = 0
    JAVA = 1
    CPP = 2

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


_ENCODINGS = ["TEXT", "JSON"]


@dataclass
class LoggingConfig:
    """``init(logging_config=LoggingConfig(...))``: how the driver's logs are formatted."""

    encoding: str = "TEXT"
    log_level: str = "INFO"
    additional_log_standard_attrs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"Invalid encoding type: {self.encoding}. Valid encoding types "
                             f"are: {_ENCODINGS}")
        if not isinstance(self.log_level, int) and \
                logging.getLevelName(str(self.log_level).upper()) == \
                f"Level {str(self.log_level).upper()}":
            raise ValueError(f"Invalid log level: {self.log_level}")

    def to_dict(self) -> dict:
        return {"encoding": self.encoding, "log_level": self.log_level,
                "additional_log_standard_attrs": list(self.additional_log_standard_attrs)}

    @classmethod
    def from_dict(cls, d: dict) -> LoggingConfig:
        return cls(**d)


def _no_cross_language(what: str):
    raise ValueError(f"{what}: cross-language calls (Java, C++) are not supported by shoal, "
                     "which runs Python workers only.")


def java_function(class_name: str, function_name: str):
    """Ray's handle to a Java function; shoal has no Java workers, so this refuses."""
    _no_cross_language(f"java_function({class_name!r}, {function_name!r})")


def java_actor_class(class_name: str):
    """Ray's handle to a Java actor class; shoal has no Java workers, so this refuses."""
    _no_cross_language(f"java_actor_class({class_name!r})")
