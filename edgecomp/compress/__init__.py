"""Compression techniques, each a pass with one small interface (see base.py)."""
