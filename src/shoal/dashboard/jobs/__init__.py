"""The Jobs API's server side on the head: :mod:`.manager` (records, entrypoint processes,
logs) and :mod:`.routes` (Ray's REST paths)."""
