"""shoal's internals, one package per process that runs them (see docs/design.md for the map).

Nothing here imports a public module of shoal; the layers are checked by import-linter
(``.importlinter``)."""
