"""The Milvus store (qa/index/milvus/) on milvus-lite: the local index's results, writes by content hash, swaps, errors.

The fast tier's index (tests/fake_embedder.py) copied into Milvus must rank, filter and read exactly as the local
one; the real model's figures on the evaluation set are in eval/compare_stores.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import milvus_copy, store_setting

from qa.answer.engine import Engine
from qa.answer.retrieval import Filters, full_text, matching_letters, word_matches
from qa.cli import main
from qa.index import local as index_store
from qa.index import stores as store
from qa.ingest.reading import make_letter

pytest.importorskip("pymilvus", reason="the Milvus store is not installed: pip install -c constraints.txt -e '.[milvus]'")

QUESTIONS = [json.loads(line)["question"] for line in (Path(__file__).parents[2] / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
FILTERS = [Filters(), Filters(date_from="2021-01-01"), Filters(date_to="1995-01-01"), Filters(sender="Defensie"), Filters(type="motie"),
           Filters(dossier="27 925"), Filters(date_from="2010-01-01", date_to="2023-12-31", type="brief_regering"), Filters(sender="IenW"),
           Filters(dossier='9" or row >= 0 or dossier == "'), Filters(dossier="\\\" or \\"), Filters(sender='Defensie" or "x')]  # quotes stay text


@pytest.mark.slow  # a milvus-lite server process
def test_the_dutch_analyzer_stems(tmp_path: Path) -> None:
    """The trap of issue 18: milvus-lite 3.x accepts the Dutch stemmer setting and ignores it; 2.5.1 stems. The store
    itself hands Milvus our stemmed tokens (qa/index/milvus/connection.py, ANALYZER, says why), but a Milvus that silently drops
    an analyzer setting is not one to trust with them: raw Dutch through Milvus's Dutch analyzer, "afbouwen" must find "afbouw"."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from qa.index.milvus import DUTCH_ANALYZER

    client = MilvusClient(str(tmp_path / "stem.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, analyzer_params=DUTCH_ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    params = client.prepare_index_params()
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection("stem", schema=schema, index_params=params)
    client.insert("stem", [{"id": 1, "text": "De afbouw van de missie"}, {"id": 2, "text": "Kinderopvang en toeslagen"}])
    client.flush("stem")

    def found(query: str) -> list[int]:
        return [hit["id"] for hit in client.search("stem", data=[query], anns_field="sparse", limit=5, search_params={"metric_type": "BM25"})[0]]

    assert found("afbouwen") == [1], "the Milvus analyzer does not stem Dutch (milvus-lite 3.x? pin milvus-lite==2.5.1)"
    assert found("toeslag") == [2] and found("opbouw") == []
    client.close()


@pytest.mark.slow  # a milvus-lite server process
def test_every_ranking_filter_and_read_is_the_local_one(fast_engine: Engine, fast_milvus_engine: Engine) -> None:
    local, milvus = fast_engine.index, fast_milvus_engine.index
    assert [p.id for p in milvus.passages] == [p.id for p in local.passages] and milvus.letters == local.letters
    assert milvus.manifest["letters"] == local.manifest["letters"] and milvus.generation != local.generation
    for question in QUESTIONS[::4]:
        for mode in ("hybrid", "dense", "lexical"):
            for filters in FILTERS[:: 3 if mode == "hybrid" else 5]:
                ours = fast_milvus_engine.search(question, k=10, filters=filters, mode=mode)
                theirs = fast_engine.search(question, k=10, filters=filters, mode=mode)
                assert [hit.passage.id for hit in ours] == [hit.passage.id for hit in theirs], (question, mode, filters)
                # BM25 scores agree to float32 rounding, so near-ties deeper in a ranking may swap and move a fused score a little.
                assert [hit.score for hit in ours] == pytest.approx([hit.score for hit in theirs], rel=1e-2)
    for filters in FILTERS:
        assert word_matches(milvus, "Afghanistan missie", filters) == word_matches(local, "Afghanistan missie", filters), filters
        assert [letter.id for letter in matching_letters(milvus, filters, "drone")] == [letter.id for letter in matching_letters(local, filters, "drone")]
    assert full_text(milvus, "Resolute Support") == pytest.approx(full_text(local, "Resolute Support")) != {}
    rows = [0, 17, 5, len(local.passages) - 1]
    assert np.array_equal(milvus.passage_vectors(rows), local.passage_vectors(rows))
    for row in rows:
        assert all(np.array_equal(a, b) for a, b in zip(milvus.sentences(row), local.sentences(row)))
    assert np.allclose(milvus.mean_vector(), local.mean_vector(), atol=1e-6)
    assert [milvus.lexical.idf(t) for t in ("afbouw", "drone", "xqzvw")] == [local.lexical.idf(t) for t in ("afbouw", "drone", "xqzvw")]


@pytest.mark.slow  # a milvus-lite server process
def test_answers_are_the_local_ones(fast_engine: Engine, fast_milvus_engine: Engine) -> None:
    for question in QUESTIONS[::10]:
        ours, theirs = fast_milvus_engine.ask(question), fast_engine.ask(question)
        assert (ours.text, ours.abstained, ours.confidence) == (theirs.text, theirs.abstained, theirs.confidence), question


@pytest.mark.slow  # a milvus-lite server process
def test_old_generations_are_dropped(tmp_path: Path, fast_index_dir: Path, fake_embedder: Any) -> None:
    """The live generation and its predecessor stay (a server may still read it); older ones' collections go. (What an
    update adds, replaces and removes, and commit and abort, are tests/unit/test_store_conformance.py's, for every store.)"""
    from qa.index.milvus import client

    location = milvus_copy(fast_index_dir, tmp_path)
    extra = make_letter("Brief over de zeearend en de windparken op zee.\n\nDe zeearend broedt weer in Nederland.", None,
                        {"id": "kst-99999-1", "title": "Zeearend", "date": "2024-01-02", "type": "brief_regering"})
    store.update(location, fake_embedder, add=[extra])
    second = store.load(location)
    store.update(location, None, remove=["kst-99999-1", "kst-27925-781"])
    third = store.load(location)
    names = {name.rsplit("_", 1)[0] for name in client(location).list_collections() if name.startswith("qa_gen_")}
    assert names == {f"qa_{generation.replace('-', '_')}" for generation in (second.generation, third.generation)}
    assert store.live_generation(location) == third.generation


@pytest.mark.slow  # a milvus-lite server process
def test_a_first_build_makes_the_milvus_lite_folder(tmp_path: Path, fake_embedder: Any) -> None:
    location = store.locate(tmp_path, f"milvus-lite:{tmp_path / 'new' / 'deeper' / 'milvus.db'}")
    letter = make_letter("De zeearend broedt weer in Nederland, schrijft de minister.", None, {"id": "kst-99999-2", "type": "brief_regering"})
    summary = store.update(location, fake_embedder, add=[letter], replace_all=True)
    assert summary.added == ["kst-99999-2"] and list(store.load(location).letters) == ["kst-99999-2"]


@pytest.mark.slow  # a milvus-lite server process
def test_a_server_on_milvus_reloads_a_swapped_generation(tmp_path: Path, fast_index_dir: Path, fake_embedder: Any) -> None:
    """A running app notices the new live generation (--watch-index) and serves it; the data folder keeps only user data."""
    import time

    from litestar.testing import TestClient

    from qa.server.app import create_app
    from qa.server.settings import Settings

    location = milvus_copy(fast_index_dir, tmp_path)
    engine = Engine(store.load(location), fake_embedder)
    settings = Settings(index_dir=location.data_dir, store=store_setting(location), build_sample=False, watch_seconds=0.2)
    with TestClient(create_app(settings, engine=engine)) as client:
        before = client.get("/api/health").json()
        assert client.get("/api/letters/kst-99999-1").status_code == 404
        extra = make_letter("De zeearend broedt weer in Nederland.", None, {"id": "kst-99999-1", "title": "Zeearend", "date": "2024-01-02"})
        store.update(location, fake_embedder, add=[extra])
        deadline = time.monotonic() + 30
        while client.get("/api/health").json()["generation"] == before["generation"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/api/health").json()["generation"] == store.live_generation(location) != before["generation"]
        assert client.get("/api/letters/kst-99999-1").status_code == 200
        hits = client.get("/api/search", params={"q": "zeearend", "k": 1}).json()["results"]
        assert hits[0]["letter_id"] == "kst-99999-1"
    assert not (location.data_dir / index_store.POINTER).exists()  # nothing of the index is local


@pytest.mark.slow  # a milvus-lite server process
def test_the_cli_builds_searches_and_copies_on_milvus(tmp_path: Path, fast_index_dir: Path) -> None:
    runner = CliRunner()
    target = f"milvus-lite:{tmp_path / 'cli.db'}"
    copied = runner.invoke(main, ["index", "copy", "--index", str(fast_index_dir), "--to", target])
    assert copied.exit_code == 0, copied.output
    info = runner.invoke(main, ["index", "info", "--index", str(tmp_path / "data"), "--store", target, "--json"])
    assert info.exit_code == 0 and json.loads(info.output)["passages"] == len(index_store.load(fast_index_dir).passages)
    removed = runner.invoke(main, ["index", "remove", "kst-27925-781", "--index", str(tmp_path / "data")], env={"QA_STORE": target})
    assert removed.exit_code == 0 and "removed 1" in removed.output, removed.output


@pytest.mark.parametrize("value", ["milvus-lite:", "milvus://nohost", "milvus://host:0", "milvus://h:99999", "mivlus://h:1", "foo", "milvus://h:1/9x"])
def test_a_malformed_store_is_one_line_and_exit_2(value: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["index", "info", "--index", str(tmp_path), "--store", value])
    assert result.exit_code == 2 and result.output.startswith("Error: store ") and len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(store.SettingsError):
        store.locate(tmp_path, value)


@pytest.mark.slow  # pymilvus waits CONNECT_TIMEOUT (10 s) before it gives up
def test_an_unreachable_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(main, ["search", "Afghanistan", "--index", str(tmp_path), "--store", f"milvus://127.0.0.1:{port}"])
    assert result.exit_code == 2 and "cannot reach the Milvus server" in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_locations_parse() -> None:
    here = Path("data")
    assert store.locate(here, None).kind == "local" and store.locate(here, "local").data_dir == here
    lite = store.locate(here, "milvus-lite:index/milvus.db")
    assert lite.kind == "milvus-lite" and lite.target == str(Path("index/milvus.db").absolute())
    assert store.locate(here, str(lite)) == lite
    server = store.locate(here, "milvus://10.0.0.5:19530/kamer_1")
    assert (server.target, server.prefix) == ("http://10.0.0.5:19530", "kamer_1") and store.locate(here, str(server)) == server
