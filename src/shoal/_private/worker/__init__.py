"""What only a worker process runs: executing pushed tasks and actor calls."""
