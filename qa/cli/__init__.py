"""`qa`: build and inspect the index, search, ask, evaluate and serve from the terminal.

The click group and its error handling; each command group is a module beside this one (index, ask, feedback,
watch, evaluate, serve, model, fetch). None of them imports numpy, FAISS or torch before a command runs
(common.py, `_Deferred`), so `qa --help` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from qa.cli.ask import ask, kamervragen_command, search
from qa.cli.common import EXIT_CRASH, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from qa.cli.evaluate import evaluate_command
from qa.cli.feedback import feedback_group
from qa.cli.fetch import fetch
from qa.cli.index import describe_index, index_group, update
from qa.cli.model import model_group
from qa.cli.serve import serve
from qa.cli.watch import watch_group
from qa.core.display import terminal_safe
from qa.core.errors import QAError

__all__ = ["EXIT_CRASH", "EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "Main", "describe_index", "main"]


class Main(click.Group):
    """The one place where a known failure (`QAError`, or the system refusing a file) becomes one line and
    EXIT_ERROR. Anything else is a bug and keeps its traceback (EXIT_CRASH)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (QAError, OSError) as error:
            click.echo(f"Error: {terminal_safe(str(error))}", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=Main)
@click.version_option(package_name="kamerbrieven-qa")
def main() -> None:
    """Ask questions about Dutch parliamentary letters (Kamerbrieven), with cited answers."""


for command in (index_group, update, fetch, search, ask, kamervragen_command, feedback_group, watch_group, evaluate_command, serve, model_group):
    main.add_command(command)
