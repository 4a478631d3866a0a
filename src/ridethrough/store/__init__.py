"""Where history lives: SQLite by default (``SqliteStore``); Redis/PostgreSQL later.

Callers catch one error, ``StoreUnavailable``: the store may fail, requests may not.
"""

from ridethrough.store.sqlite import SqliteStore, StoreUnavailable

__all__ = ["SqliteStore", "StoreUnavailable"]
