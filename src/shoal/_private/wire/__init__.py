"""What every shoal process shares to talk to another: framing and authentication, the session's token and paths, serialization, ids, the shared-memory segment format, resource amounts, tunables."""
