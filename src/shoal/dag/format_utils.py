"""The text form of a DAG node (``str(node)``): its type and uuid, body, arguments, options
and other values, nested nodes and containers indented under their key."""

from __future__ import annotations

from typing import Any

from .base import DAGNodeBase

_INDENT = "    "


def get_dag_node_str(dag_node, body_line: Any) -> str:
    """``(Type, uuid)(`` then one line per part of the node, then ``)``."""
    opts = {k: v for k, v in dag_node._bound_options.items() if v}
    fields = [
        ("args", list(dag_node._bound_args)),
        ("kwargs", dag_node._bound_kwargs),
        ("options", opts),
        ("other_args_to_resolve", dag_node._bound_other_args_to_resolve),
    ]
    lines = [f"({type(dag_node).__name__}, {dag_node._stable_uuid})(",
             f"{_INDENT}body={body_line}"]
    for name, value in fields:
        value_lines = _value_lines(value)
        lines.append(f"{_INDENT}{name}={value_lines[0]}")
        lines.extend(_INDENT + line for line in value_lines[1:])
    lines.append(")")
    return "\n".join(lines)


def _value_lines(value: Any) -> list[str]:
    """The lines of one value: the first unindented, nested parts indented under it."""
    if isinstance(value, DAGNodeBase):
        return str(value).split("\n")
    if isinstance(value, (list, tuple)) and value:
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        body = []
        for item in value:
            item_lines = _value_lines(item)
            item_lines[-1] += ","
            body.extend(item_lines)
        return [opening, *(_INDENT + line for line in body), closing]
    if isinstance(value, dict) and value:
        body = []
        for key, item in value.items():
            item_lines = _value_lines(item)
            body.append(f"{key}: {item_lines[0]}")
            body.extend(item_lines[1:])
        return ["{", *(_INDENT + line for line in body), "}"]
    if isinstance(value, dict):
        return ["{}"]
    if isinstance(value, list):
        return ["[]"]
    return str(value).split("\n")
