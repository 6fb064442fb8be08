"""`qa serve`: the web app (qa/server), started once the index and the model are loaded."""

from __future__ import annotations

from pathlib import Path

import click

from qa.cli.common import index_option, llm_options, model_option, store_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
@index_option
@store_option
@model_option
@click.option("--build-sample/--no-build-sample", default=True, show_default=True,
              help="Without an index, build one from the bundled sample letters (else say what to run).")
@click.option("--rate-limit", envvar="QA_RATE_LIMIT", default=None, metavar="N/UNIT",
              help="Requests per client address on /api, e.g. 60/minute [default: $QA_RATE_LIMIT or no limit].")
@click.option("--base-url", envvar="QA_BASE_URL", default=None, metavar="URL",
              help="The site's address for absolute links (Atom feeds), e.g. https://kamerbrieven.example.nl [default: $QA_BASE_URL, "
                   "else the request's Host when it is an allowed one].")
@click.option("--allowed-hosts", envvar="QA_ALLOWED_HOSTS", default="", metavar="NAMES",
              help="Host names clients use besides loopback, --host and --base-url's, comma separated; * for any [default: $QA_ALLOWED_HOSTS].")
@click.option("--watch-index", "watch_seconds", type=click.FloatRange(0), default=0, show_default=True, metavar="SECONDS",
              help="Check the index's CURRENT pointer this often and load a rebuilt index (0: only on POST /api/admin/reload).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes, each with its own copy of the model (~1.2 GB each with e5-small) and cores / N threads.")
@llm_options
def serve(host: str, port: int, index_dir: Path, store: str | None, model: str | None, build_sample: bool, rate_limit: str | None,
          base_url: str | None, allowed_hosts: str, watch_seconds: float, workers: int, llm_url: str | None, llm_model: str | None,
          llm_timeout: float | None) -> None:
    """The web app: chat page at /, JSON API at /api, API docs at /api/docs.

    The index and model load once, before the server starts (so a missing index is one clear
    line, not a traceback). A rebuilt index is picked up with --watch-index or POST /api/admin/reload
    (enabled by setting $QA_ADMIN_KEY; never pass the key on the command line)."""
    from qa.server.serve import serve as run
    from qa.server.settings import Settings, parse_hosts

    run(Settings(index_dir=index_dir, store=store, model=model, build_sample=build_sample, rate_limit=rate_limit, watch_seconds=watch_seconds,
                 llm_url=llm_url, llm_model=llm_model, llm_timeout=llm_timeout, base_url=base_url or None,
                 allowed_hosts=parse_hosts(allowed_hosts)), host, port, workers)

