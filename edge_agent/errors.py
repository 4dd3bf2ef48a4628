"""The project's one exception tree.

Exceptions are for bugs and for configuration errors found at start. Bad input at a
boundary is not an exception: it becomes a `Rejected` value, is counted and logged.
Each class also inherits the matching built-in so callers may catch either.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError, ValueError):
    """A site configuration that cannot work; carries one line per problem."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(problems))


class StoreError(AgentError, RuntimeError):
    """The database cannot be opened or migrated."""


class DeviceError(AgentError, OSError):
    """A device cannot be opened; the transport retries, the core never sees it."""


class IndicatorError(AgentError, ValueError):
    """An indicator set (or one of its indicators or lists) that cannot be used.

    `problems` holds (indicator or list id, reason) pairs, every one found, so the RAU
    can fix a file in one round.
    """

    def __init__(self, problems: list[tuple[str, str]], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(f"{ident}: {reason}" for ident, reason in problems))


class ConsoleError(AgentError, RuntimeError):
    """The officers' console cannot start (its address is taken or invalid)."""
