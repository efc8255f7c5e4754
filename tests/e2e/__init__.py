"""End-to-end tests: the command line and whole clusters, run as separate processes."""
