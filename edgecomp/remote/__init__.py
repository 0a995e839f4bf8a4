"""Transports that carry artifacts to a device and run the measuring agent there."""
