"""Result records, the SQLite store, and the comparison table."""
