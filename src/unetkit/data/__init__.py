"""Data: I/O, datasets, synthetic generators, transforms."""
