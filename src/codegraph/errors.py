"""Exceptions that cross module boundaries, and how the CLI presents them."""

from __future__ import annotations


class CodegraphError(Exception):
    """Base of every error codegraph raises on purpose."""


class UserError(CodegraphError):
    """Bad input from the user (path, URL, option): one line at the CLI, exit code 2."""


class StoreError(CodegraphError):
    """The store cannot be opened or used as a codegraph store."""


class DamagedIndexError(StoreError):
    """A stored index structure is damaged beyond one row (SQLite's FTS5 index): queries skip
    it with a warning; `index --full` rebuilds it."""


class NoIndexError(UserError):
    """A command that reads an index found none."""
