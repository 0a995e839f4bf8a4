"""Exporters: one module per format, each turning a model into an Artifact with a manifest."""
