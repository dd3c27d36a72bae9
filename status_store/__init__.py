"""The status view: the pure fold, the SQLite view, the projector loop, rebuild-from-topic."""
