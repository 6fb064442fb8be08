"""`qa eval`: retrieval and answer quality on a JSONL question set (qa/answer/evaluation.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import click

from qa.cli.common import index_option, json_option, open_engine, store_option


@click.command("eval")
@click.argument("questions_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--mode", type=click.Choice(["all", "hybrid", "dense", "lexical"]), default="all", show_default=True)
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Try another answer policy value, e.g. --set passages_read=3 (see qa/answer/answering.py AnswerPolicy).")
@click.option("--verbose", is_flag=True, help="Print each question with its answer and whether it holds the span.")
@click.option("--part", type=click.Choice(["all", "dev", "test"]), default="all", show_default=True,
              help="The set's fixed split by a hash of each question: tune on dev, report test.")
@index_option
@store_option
@json_option
def evaluate_command(questions_file: Path, mode: str, settings: tuple[str, ...], verbose: bool, part: str, index_dir: Path,
                     store: str | None, as_json: bool) -> None:
    """Recall@1/5/10, MRR, answer quality and decline rates on a JSONL question set."""
    from qa.answer.answering import DEFAULT_POLICY, Answer
    from qa.answer.evaluation import Question, evaluate, question_part, quotes_span, read_questions
    from qa.answer.retrieval import Mode

    if any("=" not in setting for setting in settings):
        raise click.UsageError("--set takes NAME=VALUE")
    values = dict(setting.partition("=")[::2] for setting in settings)
    try:
        policy = DEFAULT_POLICY.with_values(values)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    questions = [q for q in read_questions(questions_file) if part == "all" or question_part(q.question) == part]
    engine = open_engine(index_dir, None, store)
    missing = {q.doc_id for q in questions if q.doc_id and q.doc_id not in engine.index.letters}
    if missing:
        click.echo(f"warning: {len(missing)} of the questions' letters are not in {engine.index.location}; "
                   "their questions count as misses (build the index of the corpus they were written for)", err=True)

    def show(question: Question, rank: int | None, result: Answer | None) -> None:
        if verbose and result is not None:
            state = "declined" if result.abstained else ("ok" if quotes_span(result, question) else "miss")
            click.echo(f"[{state}] {question.question} (conf {result.confidence}; {result.decline_reason or ''}) -> {result.text[:160]}", err=True)

    modes = ["lexical", "dense", "hybrid"] if mode == "all" else [mode]
    reports = {name: evaluate(engine, questions, mode=cast(Mode, name), policy=policy, on_result=show) for name in modes}
    if as_json:
        click.echo(json.dumps({"model": engine.index.model, "results": reports}, indent=2))
        return
    click.echo(f"model {engine.index.model}, {int(next(iter(reports.values()))['questions'])} answerable questions")
    click.echo(f"{'mode':8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}")
    for name, report in reports.items():
        click.echo(f"{name:8} {report['recall@1']:6.3f} {report['recall@5']:6.3f} {report['recall@10']:6.3f} {report['mrr']:6.3f}")
    if "hybrid" in reports:
        report = reports["hybrid"]
        click.echo(
            f"answers citing the right letter {report['answer_cites_right_letter']:.3f}, quoting the answer span "
            f"{report['answer_quotes_the_span']:.3f}; declined: "
            f"{report['declined_unanswerable']:.3f} of {int(report['unanswerable_questions'])} unanswerable, "
            f"{report['declined_answerable']:.3f} of answerable questions"
        )
        kinds = [f"{key[9:]} {value:.3f}" for key, value in report.items() if key in ("declined_off_corpus", "declined_near_topic")]
        if kinds:
            click.echo("declined by kind: " + ", ".join(kinds))
        if "follow_ups" in report:
            click.echo(f"follow-ups ({int(report['follow_ups'])}) quoting the span {report['follow_up_quotes_the_span']:.3f}, "
                       f"the same spelled out {report['standalone_quotes_the_span']:.3f}")

