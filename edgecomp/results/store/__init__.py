"""The results store: SQLite or PostgreSQL, one schema with a version and forward migrations.

`Store` (store.py) is what callers use. Each server is a backend registered in `BACKENDS`
(base.py: the `Backend` protocol and the choice of a backend for a location): sqlite.py,
the default file, and postgres.py, a database shared by many machines. The tables, their
migrations and the packing of raw samples are schema.py; runs measured while their store
failed wait in spool.py.
"""

from edgecomp.results.store.base import BACKENDS, Backend, backend_for
from edgecomp.results.store.postgres import POSTGRES_SCHEMES, Postgres
from edgecomp.results.store.schema import (MIGRATIONS, SCHEMA_VERSION, pack_samples,
                                           unpack_samples)
from edgecomp.results.store.sqlite import SQLite, default_db_path
from edgecomp.results.store.store import (BUSY_TIMEOUT_S, RunInfo, Store, new_run_id,
                                          parse_since, spool_name)

__all__ = ["BACKENDS", "BUSY_TIMEOUT_S", "Backend", "MIGRATIONS", "POSTGRES_SCHEMES",
           "Postgres", "RunInfo", "SCHEMA_VERSION", "SQLite", "Store", "backend_for",
           "default_db_path", "new_run_id", "pack_samples", "parse_since", "spool_name",
           "unpack_samples"]
