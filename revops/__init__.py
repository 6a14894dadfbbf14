"""revops: revenue operations for Core Lightning routing nodes."""

__version__ = "0.1.0"
