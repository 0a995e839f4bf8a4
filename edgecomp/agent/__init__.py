"""The on-device agent: a stdlib-only package shipped to boards as one deterministic zipapp.

`protocol` holds the typed reports the host parses; the rest runs on the board.
"""
