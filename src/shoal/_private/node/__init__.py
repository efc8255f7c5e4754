"""The node daemon, one per machine: lease scheduler, worker pool, object store, transfer, logs, stats, memory monitor."""
