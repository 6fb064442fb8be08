"""`qa search`, `qa ask` and `qa kamervragen`: passages, answers and earlier Kamervragen, from the local index or
a running server (`--url`), for a terminal or as JSON."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import click

from qa.cli.common import (
    EXIT_PARTIAL,
    chosen_filters,
    echo_safe,
    filter_options,
    index_option,
    json_option,
    llm_options,
    model_option,
    open_engine,
    store_option,
)
from qa.core import limits
from qa.core.display import terminal_safe
from qa.index.filters import Filters

url_option = click.option(
    "--url", envvar="QA_URL", default=None, metavar="URL",
    help="Ask a running `qa serve` (e.g. http://127.0.0.1:8000) instead of loading the model: under a second [default: $QA_URL].",
)


def _remote(url: str | None) -> Any:
    """A client of the server at `url`, or None for the local engine. The server answers from its own index and
    model, so --index or --model on the same command line would be silently ignored: refuse them instead."""
    if not url:
        return None
    context = click.get_current_context()
    for name, flag in (("index_dir", "--index"), ("store", "--store"), ("model", "--model")):
        if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{flag} cannot be used with --url: the server answers from its own index (drop one of them)")
    from qa.cli.remote import Remote

    return Remote(url)


def _hit_json(hit: Any) -> dict[str, Any]:
    from qa.schemas import passage_out, to_json

    return to_json(passage_out(hit))


@click.command()
@click.argument("query")
@click.option("-k", default=limits.DEFAULT_K, type=click.IntRange(1, limits.MAX_K), show_default=True, help="Number of passages.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@filter_options
@index_option
@store_option
@model_option
@url_option
@json_option
def search(query: str, k: int, mode: str, index_dir: Path, store: str | None, model: str | None, url: str | None, as_json: bool,
           **filters: Any) -> None:
    """The passages that best match QUERY, without an answer."""
    query, chosen = limits.check_question(query, "query"), chosen_filters(**filters)
    remote = _remote(url)
    if remote:
        with remote:
            results = remote.search(query, k, chosen, mode)["results"]
    else:
        engine = open_engine(index_dir, model, store)
        results = [_hit_json(hit) for hit in engine.search(query, k=k, filters=chosen, mode=mode)]
    if as_json:
        click.echo(json.dumps({"results": results}, indent=2, ensure_ascii=False))
        return
    print_results(results)


def print_results(results: list[dict[str, Any]]) -> None:
    """Ranked passages (PassageOut JSON, from the engine or a server), for a terminal."""
    if not results:
        click.echo("Geen passages gevonden.")
    for rank, hit in enumerate(results, start=1):
        title = terminal_safe(f"{rank}. {hit['title'] or hit['letter_id']}")
        click.echo(click.style(title, bold=True) + terminal_safe(f"  ({hit['date'] or '?'}, {hit['letter_id']}, p. {hit['page']}, score {hit['score']:.4f})"))
        echo_safe(textwrap.indent(textwrap.fill(" ".join(hit["text"].split())[:600], 100), "   "))


@click.command()
@click.argument("question")
@click.option("-k", default=limits.DEFAULT_K, type=click.IntRange(1, limits.MAX_K), show_default=True, help="Passages to answer from.")
@click.option("--llm", "use_llm", is_flag=True, help="A generated answer from the chat model of --llm-url, every sentence checked against its source.")
@click.option("--concept", is_flag=True, help="With --llm: a concept-antwoord (50-250 words, formal) to QUESTION as a Kamervraag.")
@click.option("--show-unsupported", is_flag=True, help="With --llm: keep unsupported sentences, marked 'niet gevonden in de bron'.")
@llm_options
@filter_options
@index_option
@store_option
@model_option
@url_option
@json_option
def ask(question: str, k: int, use_llm: bool, concept: bool, show_unsupported: bool, llm_url: str | None, llm_model: str | None,
        llm_timeout: float | None, index_dir: Path, store: str | None, model: str | None, url: str | None, as_json: bool, **filters: Any) -> None:
    """Answer QUESTION with quotes from the letters, each with its source (or, with --llm, in the chat model's words)."""
    question, chosen = limits.check_question(question), chosen_filters(**filters)
    if (concept or show_unsupported) and not use_llm:
        raise click.UsageError("--concept and --show-unsupported need --llm")
    remote = _remote(url)
    generated = None
    if remote:
        if use_llm:
            raise click.UsageError("--llm asks a chat model from this machine; with --url the server answers with its own (if it has one)")
        with remote:
            body = remote.ask(question, k, chosen)
        answer = {key: value for key, value in body.items() if key not in ("query", "timings_ms", "mode")}  # the local answer's fields
    elif use_llm:
        from qa.answer.llm.client import LLMSettings
        from qa.schemas import generation_out, to_json

        llm = LLMSettings.from_env(llm_url, llm_model, None, llm_timeout)
        if llm is None:
            raise click.UsageError("--llm needs a chat model server: --llm-url URL or $QA_LLM_URL")
        generated = _generate(open_engine(index_dir, model, store), llm, question, k, chosen, concept, show_unsupported)
        answer = answer_json(generated.answer)
        answer.update(mode=generated.mode, notice=generated.notice, generation=to_json(generation_out(generated)))
    else:
        answer = answer_json(open_engine(index_dir, model, store).ask(question, k=k, filters=chosen))
    if as_json:
        click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        if generated is not None:
            if generated.error:
                echo_safe(f"Taalmodel: {generated.error}", err=True)
            if generated.notice:
                echo_safe(generated.notice)
            elif generated.total:
                echo_safe(f"(gegenereerd door {generated.model}; {generated.kept} van {generated.total} zinnen gecontroleerd en behouden)")
        print_answer(answer, quotes=generated is not None)
    if generated is not None and generated.error:
        sys.exit(EXIT_PARTIAL)  # answered, but not by the chat model that was asked for


def print_answer(answer: dict[str, Any], quotes: bool = False) -> None:
    """An answer (AnswerOut JSON, from the engine or a server) with its sources, for a terminal; `quotes`: each
    source's quote too (what backs a generated sentence, verbatim)."""
    echo_safe(textwrap.fill(answer["answer"], 100))
    if answer.get("decline_reason"):
        echo_safe(answer["decline_reason"])
    if answer.get("confidence_label"):
        echo_safe(f"Zekerheid: {answer['confidence_label']} ({answer.get('confidence', 0.0):.0%})")
    click.echo()
    if answer["citations"]:
        click.echo("Bronnen:")
        seen = set()
        for citation in answer["citations"]:
            if citation["n"] in seen:
                continue
            seen.add(citation["n"])
            where = ", ".join(filter(None, [citation["sender"], citation["date"], citation["section"] and f"§ {citation['section']}", f"p. {citation['page']}"]))
            echo_safe(f"[{citation['n']}] {citation['title'] or citation['letter_id']} ({citation['letter_id']})")
            echo_safe(f"    {where}")
            echo_safe(f"    {citation['url'] or ''}")
            if quotes:
                echo_safe(textwrap.indent(textwrap.fill(f"“{' '.join(citation['quote'].split())}”", 96), "    "))
    elif answer.get("close_passages"):
        click.echo("Passages die het dichtst in de buurt komen:")
        for hit in answer["close_passages"]:
            echo_safe(f" - {hit['title'] or hit['letter_id']} ({hit['letter_id']}, {hit['date'] or '?'}; gelijkenis {hit['score']:.2f})")


def _generate(engine: Any, llm: Any, question: str, k: int, filters: Filters, concept: bool, show_unsupported: bool) -> Any:
    import asyncio

    from qa.answer.llm.client import LLMClient
    from qa.answer.llm.generate import Options, direct, generate

    async def run() -> Any:
        client = LLMClient(llm)
        try:
            return await generate(question, k, filters, (), run=direct(engine), client=client,
                                  options=Options(task="concept" if concept else "answer", show_unsupported=show_unsupported))
        finally:
            await client.aclose()

    return asyncio.run(run())


def answer_json(result: Any) -> dict[str, Any]:
    from qa.schemas import answer_out, to_json

    return to_json(answer_out(result))



@click.command("kamervragen")
@click.argument("question", required=False)
@click.option("-k", "per_page", default=5, type=click.IntRange(1, limits.MAX_PER_PAGE), show_default=True, help="Pairs to show.")
@click.option("--page", default=1, type=click.IntRange(1), show_default=True, help="Which page of -k pairs.")
@click.option("--asker", help="Only questions of this member or party, e.g. Keijzer or BBB.")
@click.option("--min-score", type=float, default=None, help="Leave out pairs scoring below this [default: PairPolicy.list_from].")
@filter_options
@index_option
@json_option
def kamervragen_command(question: str | None, per_page: int, page: int, asker: str | None, min_score: float | None,
                        index_dir: Path, as_json: bool, **filters: Any) -> None:
    """Earlier Kamervragen like QUESTION, each with the government's answer, verbatim (without QUESTION: the newest)."""
    from qa.answer import kamervragen
    from qa.schemas import pair_out, to_json

    question = limits.check_question(question) if question is not None else None
    chosen = chosen_filters(**filters)
    engine = open_engine(index_dir, None)
    ranked = kamervragen.RankedPairs(kamervragen.PairIndex.build(engine.index))
    found = kamervragen.find(engine, ranked, question, chosen, asker, page, per_page, min_score)
    pairs = [pair_out(match) for match in found.items]
    if as_json:
        click.echo(json.dumps({"pairs": [to_json(pair) for pair in pairs], "page": found.page, "per_page": found.per_page,
                               "total": found.total, "pages": found.pages}, indent=2, ensure_ascii=False))
        return
    if not pairs:
        click.echo("Geen eerder gestelde Kamervragen gevonden.")
    for rank, pair in enumerate(pairs, start=(page - 1) * per_page + 1):
        click.echo(click.style(terminal_safe(f"{rank}. {pair.label}: {pair.title or pair.letter_id}"), bold=True)
                   + terminal_safe(f"  ({pair.date or '?'}, {pair.letter_id}" + (f", score {pair.score:.3f})" if question else ")")))
        who = ", ".join(pair.askers) or "?"
        echo_safe(f"   Gesteld door {who}{' op ' + pair.asked_on if pair.asked_on else ''}; beantwoord door {pair.minister or '?'}")
        echo_safe(textwrap.indent(textwrap.fill("Vraag: " + " ".join(pair.question.split()), 100), "   "))
        echo_safe(textwrap.indent(textwrap.fill("Antwoord: " + " ".join(pair.answer.split()), 100), "   "))
        if pair.url:
            echo_safe(f"   {pair.url}")
    if found.pages > 1:
        click.echo(f"({found.total} pairs, page {found.page} of {found.pages}; --page for more)")

