"""Reading many rows' timestamps quickly: on PostgreSQL, parsed in C (fast_datetimes), for
the tick's read of every job and a batch's read of the jobs it claimed."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import connection


@functools.cache
def _iso_loader(djangos: type) -> type:
    """Django's timestamptz loader, reading with datetime.fromisoformat. One class per
    Django loader (one per zone), made once: psycopg keeps every loader class it is
    given in a dict of its own, so a new class per read grew a long-lived loop."""

    class IsoTzLoader(djangos):  # keeps Django's zone, which it checks before each cursor
        def load(self, data):
            try:
                return datetime.fromisoformat(bytes(data).decode()).astimezone(self.timezone)
            except ValueError:  # BC, a year past 9999, infinity: as Django reads them
                return super().load(data)

    return IsoTzLoader


@contextmanager
def fast_datetimes():
    """PostgreSQL: timestamps read inside with datetime.fromisoformat (in C) rather than
    psycopg's Python parser that Django's loader extends: that parser was most of the
    cost of reading every job's row (3.5 us a value). The same aware datetimes."""
    if connection.vendor != "postgresql" or not settings.USE_TZ:
        yield
        return
    from psycopg.pq import Format

    connection.ensure_connection()
    adapters = connection.connection.adapters
    oid = adapters.types["timestamptz"].oid
    djangos = adapters.get_loader(oid, Format.TEXT)
    adapters.register_loader(oid, _iso_loader(djangos))
    try:
        yield
    finally:
        adapters.register_loader(oid, djangos)
