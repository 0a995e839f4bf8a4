"""edgecomp: compress a neural network, export it for edge runtimes, and measure it on the board."""

__version__ = "0.1.0"
