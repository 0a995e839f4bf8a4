"""CLI subcommand groups; edgecomp/cli.py wires them in."""
