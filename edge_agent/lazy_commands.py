"""Click groups whose subcommands are imported on first use.

`edge-agent --help` and `check-config` must start in a blink on a Pi, so a group names
its subcommands with their help lines here and imports each module only when it runs.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A click group whose subcommands live in other modules, imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every subcommand's module: their help lines are here.
        rows = [(name, cmd.get_short_help_str(60)) for name, cmd in self.commands.items() if not cmd.hidden]
        rows += [(name, short) for name, (_, short) in self.lazy.items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name][0].split(":")
            command = getattr(importlib.import_module(module), attr)
            command.name = name
            return command
        return super().get_command(ctx, name)
