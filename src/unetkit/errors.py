"""User-facing errors.

Everything that a user can cause by bad input (a missing file, wrong axes, an invalid size,
a bad config value) raises a subclass of :class:`UnetkitError` with a message that names the
bad value and what would be valid. The CLI prints such errors without a traceback and exits
non-zero. Subclasses also derive from the matching built-in exception so that callers of the
Python API can catch ``ValueError`` / ``FileNotFoundError`` as usual.
"""

from __future__ import annotations


class UnetkitError(Exception):
    """Base class of errors caused by user input or configuration."""


class InputError(UnetkitError, ValueError):
    """Bad data: wrong shape, axes, dtype, NaN values, missing labels."""


class ShapeError(InputError):
    """A spatial shape that the model cannot process (names the nearest valid shapes)."""


class ConfigError(UnetkitError, ValueError):
    """A configuration key or value that is unknown or invalid."""


class MissingFileError(UnetkitError, FileNotFoundError):
    """A path that does not exist (or a key missing inside a container file)."""


class TrainingDiverged(UnetkitError, RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""
