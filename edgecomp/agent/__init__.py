"""The on-device agent (edgecomp_agent.py), copied to boards and run there."""
