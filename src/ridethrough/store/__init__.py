"""Where history lives: SQLite by default (``SqliteStore``); Redis/PostgreSQL later.

Callers catch one error, ``StoreUnavailable``: the store may fail, requests may not.
``SharedTables`` holds what several worker processes exchange through the same file.
"""

from ridethrough.store.shared import SharedRead, SharedTables, SliceRow
from ridethrough.store.sqlite import SqliteStore, StoreUnavailable

__all__ = ["SharedRead", "SharedTables", "SliceRow", "SqliteStore", "StoreUnavailable"]
