"""The command line's one error type: a user error found after parsing."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A user error detected after parsing; reported as 'fastocclusion COMMAND: error: ...',
    exit 2."""
