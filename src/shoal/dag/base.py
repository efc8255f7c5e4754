"""The common base class of DAG nodes, kept apart so the object scanner can find nodes
without importing the node classes."""


class DAGNodeBase:
    """A node in a task graph built with ``.bind()``."""
