"""The backends (qa/embed/onnx_runtime.py): ONNX Runtime and torch-bf16 give torch's vectors within a measured bound, an
index records its backend and is searched and extended with it, and an export is made once and never half-used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa.answer.engine import Engine
from qa.cli import main
from qa.core.errors import IndexStateError, ModelError
from qa.embed import onnx_runtime
from qa.embed.embedding import Embedder
from qa.index import local as index_store
from qa.ingest.chunking import split_sentences

TEXTS = [
    "De minister van Defensie informeert de Kamer over de proef met drones boven de Noordzee, die in 2021 begon.",
    "Het kabinet trekt 1,2 miljard euro uit voor de aanpak van stikstof; de provincies voeren de plannen uit.",
    "Uiterlijk 11 september dient dit te zijn afgerond. " * 30,  # long: truncated at 512 tokens like torch
]
QUESTION = "Hoeveel geld trekt het kabinet uit voor stikstof?"


# --- fast: names, identities, fingerprints ---------------------------------------------------------------------


def test_an_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="unknown embedding backend 'gpu'"):
        onnx_runtime.check_backend("gpu")
    result = CliRunner().invoke(main, ["index", "build", "--backend", "gpu"])
    assert result.exit_code == 2 and "'gpu' is not one of" in result.output


def test_bf16_is_read_from_the_cpus_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n", encoding="utf-8")
    assert not onnx_runtime.cpu_has_bf16(cpuinfo)
    for flag in ("avx512_bf16", "amx_bf16"):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu avx512f {flag} avx512_vnni\n", encoding="utf-8")
        assert onnx_runtime.cpu_has_bf16(cpuinfo)
    assert not onnx_runtime.cpu_has_bf16(tmp_path / "missing")


def test_torch_bf16_on_a_cpu_without_bf16_is_refused_before_the_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch emulates bf16 where the CPU cannot multiply in it: slower than fp32, so it is refused, saying what to use."""
    monkeypatch.setattr(onnx_runtime, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(Embedder, "_load_torch", lambda *args: pytest.fail("the model was loaded"))
    with pytest.raises(ModelError, match="needs a CPU with bf16 instructions .* Use onnx-int8"):
        Embedder("multilingual-e5-small", backend="torch-bf16")
    result = CliRunner().invoke(main, ["index", "build", "--backend", "torch-bf16", "--index", str(tmp_path / "index")])
    assert result.exit_code == 2 and "needs a CPU with bf16 instructions" in result.output, result.output
    assert not (tmp_path / "index").exists()


def test_vectors_of_another_backend_are_kept_under_another_name() -> None:
    assert onnx_runtime.vector_identity("multilingual-e5-small", "torch") == "multilingual-e5-small"  # as before backends
    assert onnx_runtime.vector_identity("multilingual-e5-small", "onnx") != onnx_runtime.vector_identity("multilingual-e5-small", "onnx-int8")


def test_the_export_folder_changes_with_what_went_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"weights")
    adapter = tmp_path / "adapter.safetensors"
    adapter.write_bytes(b"one")
    first = onnx_runtime.export_dir("m", str(tmp_path / "model"), adapter, "onnx")
    assert first.parent == tmp_path / "cache" / "onnx"
    assert first == onnx_runtime.export_dir("m", str(tmp_path / "model"), adapter, "onnx")
    assert first != onnx_runtime.export_dir("m", str(tmp_path / "model"), adapter, "onnx-int8")
    adapter.write_bytes(b"two")
    assert first != onnx_runtime.export_dir("m", str(tmp_path / "model"), adapter, "onnx")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"other weights")
    assert onnx_runtime.export_dir("m", str(tmp_path / "model"), None, "onnx") != onnx_runtime.export_dir("m", str(tmp_path / "model"), adapter, "onnx")


def test_a_half_written_export_is_never_used(tmp_path: Path) -> None:
    folder = tmp_path / "onnx" / "m-onnx-0"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"half")  # no marker: an interrupted export
    calls: list[str] = []

    def failing_load():  # type: ignore[no-untyped-def]
        calls.append("load")
        raise ModelError("stop here")

    with pytest.raises(ModelError, match="stop here"):
        onnx_runtime.ensure_export(folder, failing_load, "onnx", log=lambda line: None)
    assert calls == ["load"] and not folder.exists()  # the leftover was removed, then the export was tried
    assert not list(folder.parent.glob("*.tmp-*"))


# --- real: the model on each backend ----------------------------------------------------------------------------

HAS_BF16 = onnx_runtime.cpu_has_bf16()


@pytest.fixture(scope="module")
def encoded() -> dict[str, tuple[np.ndarray, list[np.ndarray], np.ndarray]]:
    spans = [np.asarray(split_sentences(text)) for text in TEXTS]
    results = {}
    for backend in onnx_runtime.runnable_backends():
        embedder = Embedder("multilingual-e5-small", backend=backend)
        assert embedder.backend == backend and embedder.dimension == 384
        vectors, span_vectors = embedder.embed_passages_with_spans(TEXTS, spans)
        results[backend] = (vectors, span_vectors, embedder.embed_query(QUESTION))
    return results


@pytest.mark.model
@pytest.mark.parametrize(("backend", "bound"), [
    ("onnx", 0.9999), ("onnx-int8", 0.995),
    pytest.param("torch-bf16", 0.9995, marks=pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 instructions")),
])
def test_vectors_are_torch_vectors_within_the_measured_bound(encoded, backend: str, bound: float) -> None:  # type: ignore[no-untyped-def]
    """fp32 is the same computation (cos 0.99999994 measured); int8 weights move vectors a little (recipe 4: passages
    >= 0.998 on 400 passages of the shared corpus, bench/backends.py; recipe 3, all MatMuls in int8: 0.993); bf16
    products with fp32 sums: >= 0.99998 on 240 passages."""
    vectors, spans, query = encoded[backend]
    torch_vectors, torch_spans, torch_query = encoded["torch"]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert (vectors * torch_vectors).sum(axis=1).min() > bound
    assert all(a.shape == b.shape and (a * b).sum(axis=1).min() > bound - 0.01 for a, b in zip(spans, torch_spans))
    assert float((query * torch_query).sum()) > bound
    # the stikstof passage is the question's best on every backend
    assert int(np.argmax(vectors @ query[0])) == int(np.argmax(torch_vectors @ torch_query[0])) == 1


@pytest.mark.model
@pytest.mark.parametrize(("backend", "attention"), [("onnx", "Attention"), ("onnx-int8", "QAttention")])
def test_the_export_fuses_each_layers_attention_into_one_op(backend: str, attention: str) -> None:
    """Recipe 3: an export traced through torch's SDPA kept attention as ~20 loose ops a layer, 1.5x slower."""
    import onnx

    embedder = Embedder("multilingual-e5-small", backend=backend)
    assert embedder._onnx is not None
    kinds = [node.op_type for node in onnx.load(str(embedder._onnx.folder / "model.onnx")).graph.node]
    assert kinds.count(attention) == 12 and "Softmax" not in kinds, sorted(set(kinds))


@pytest.mark.model
def test_an_index_records_its_backend_and_is_searched_and_extended_with_it(tmp_path: Path, sample_letters) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "index"
    onnx = Embedder("multilingual-e5-small", backend="onnx")
    index_store.update(folder, onnx, add=sample_letters[:3], replace_all=True)
    index = index_store.load(folder)
    assert index.backend == "onnx" and index_store.info(index)["backend"] == "onnx"
    engine = Engine.open(folder)
    assert engine.embedder.backend == "onnx"  # queries are embedded by the backend that made the passages
    assert engine.search("drones", k=3)
    with pytest.raises(IndexStateError, match="on onnx, not .* on torch"):
        index_store.update(folder, Embedder("multilingual-e5-small", backend="torch"), add=sample_letters[3:4])
    assert index_store.load(folder).generation == index.generation  # refused before anything was written
    result = CliRunner().invoke(main, ["index", "add", str(sample_letters[3].source), "--index", str(folder)],
                                env={"QA_BACKEND": "torch"})  # the index's backend wins over the default for new builds
    assert result.exit_code == 0, result.output
    assert index_store.load(folder).backend == "onnx" and len(index_store.load(folder).letters) == 4


def test_an_unwritable_cache_is_a_clear_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service user's read-only home: was a PermissionError traceback on the first start."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache should be", encoding="utf-8")
    monkeypatch.setenv("QA_CACHE_DIR", str(blocker))
    folder = onnx_runtime.export_dir("m", str(tmp_path), None, "onnx")
    with pytest.raises(ModelError, match="cannot write the ONNX export .* QA_CACHE_DIR .* QA_BACKEND=torch"):
        onnx_runtime.ensure_export(folder, lambda: pytest.fail("nothing is loaded"), "onnx", log=lambda line: None)


@pytest.mark.model
@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 instructions")
def test_a_bf16_index_on_a_cpu_without_bf16_is_refused_and_can_be_rebuilt(tmp_path: Path, sample_letters, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """An index built on a server with bf16, copied to a laptop without: a clear error, nothing lost, a rebuild works."""
    folder = tmp_path / "index"
    index_store.update(folder, Embedder("multilingual-e5-small", backend="torch-bf16"), add=sample_letters[:2], replace_all=True)
    built = index_store.load(folder)
    assert built.backend == "torch-bf16" and Engine.open(folder).search("drones", k=3)
    monkeypatch.setattr(onnx_runtime, "cpu_has_bf16", lambda: False)
    result = CliRunner().invoke(main, ["ask", "Hoeveel kost de registratie van een drone?", "--index", str(folder)])
    assert result.exit_code == 2 and "needs a CPU with bf16 instructions" in result.output, result.output
    assert index_store.load(folder).generation == built.generation
    sources = [str(letter.source) for letter in sample_letters[:2]]
    result = CliRunner().invoke(main, ["index", "build", *sources, "--backend", "onnx", "--index", str(folder)])
    assert result.exit_code == 0, result.output
    assert index_store.load(folder).backend == "onnx" and len(index_store.load(folder).letters) == 2
