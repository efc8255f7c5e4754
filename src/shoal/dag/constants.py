"""Reserved keys of ``other_args_to_resolve`` used by the DAG node classes (Ray's names)."""

# A ClassMethodNode's actor: a ClassNode, or an ActorHandle when bound on a live actor.
PARENT_CLASS_NODE_KEY = "parent_class_node"
# The previous method call bound on the same ClassNode: calls run in the order bound.
PREV_CLASS_METHOD_CALL_KEY = "prev_class_method_call"
# How many method calls had been bound on the actor handle before this one.
BIND_INDEX_KEY = "bind_index"
# Marks the placeholder node of one return value of a call with num_returns > 1.
IS_CLASS_METHOD_OUTPUT_KEY = "is_class_method_output"
# Used by Ray's compiled graphs' collective nodes; reserved here for the same meaning.
COLLECTIVE_OPERATION_KEY = "collective_operation"
# Distinguishes a serialized DAG node from a user's dict.
DAGNODE_TYPE_KEY = "__dag_node_type__"
