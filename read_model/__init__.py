"""The status read model: the pure fold of a task's events and the SQLite view that holds its rows.

The projector (status_store) writes it; the API reads it. Both import it from here.
"""
