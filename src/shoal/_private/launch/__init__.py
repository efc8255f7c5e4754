"""Process entry points and starting them: the node and head daemon's main, the worker's main, clusters on this machine."""
