import gzip
import json

import numpy as np
import pytest

from masklab.config import build_config
from masklab.data.pipeline import prepare_data
from masklab.data.prepare import prepare_corpus
from masklab.data.shards import packed_blocks
from masklab.data.sources import iter_documents
from masklab.data.tokenizer import load_tokenizer, train_tokenizer
from masklab.errors import UserError

PERSIAN = "زبان فارسی با خط عربی نوشته می‌شود و آ و ی و ک دارد."


def data_cfg(corpus, *extra):
    return build_config({}, [f"data.corpus={corpus}", "data.min_chars=1", *extra]).data


def test_txt_blank_line_and_line_splitting(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("first doc\nstill first\n\nsecond doc\n\n\nthird\n", encoding="utf-8")
    assert list(iter_documents(str(p))) == ["first doc\nstill first\n", "second doc\n", "third\n"]
    assert len(list(iter_documents(str(p), doc_split="line"))) == 4


def test_structured_formats_and_directories(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text('{"body": "json one"}\n{"body": "json two"}\n', encoding="utf-8")
    (tmp_path / "d" / "b.csv").write_text('id,body\n1,"csv, with comma"\n', encoding="utf-8")
    with gzip.open(tmp_path / "d" / "c.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": "gzipped"}) + "\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["parquet text"]}), tmp_path / "d" / "e.parquet")
    docs = list(iter_documents(str(tmp_path / "d"), column="body"))
    assert docs == ["json one", "json two", "csv, with comma", "gzipped", "parquet text"]


def test_builtin_sotu_is_shipped():
    first = next(iter_documents("builtin:sotu"))
    assert "Congress" in first or "congress" in first.lower()


def test_cleaning_dedup_length_filter_and_split(tmp_path):
    p = tmp_path / "c.txt"
    docs = [f"document number {i} with some words" for i in range(200)]
    p.write_text("\n\n".join(docs + docs[:10] + ["tiny"]), encoding="utf-8")
    prepared = prepare_corpus(data_cfg(p, "data.min_chars=10", "data.val_fraction=0.2"))
    s = prepared.stats
    assert s["duplicates"] == 10 and s["too_short"] == 1
    assert s["train_docs"] + s["val_docs"] == 200
    assert 20 <= s["val_docs"] <= 60  # ~40 expected
    train, val = set(prepared.documents("train")), set(prepared.documents("val"))
    assert not train & val
    # the split depends on the text and split_seed only: same on reversed input
    q = tmp_path / "r.txt"
    q.write_text("\n\n".join(reversed(docs)), encoding="utf-8")
    again = prepare_corpus(data_cfg(q, "data.min_chars=10", "data.val_fraction=0.2"))
    assert set(again.documents("val")) == val


def test_persian_text_comes_through_intact(tmp_path):
    p = tmp_path / "fa.txt"
    p.write_text(f"{PERSIAN}\n\n{PERSIAN} دوم\n", encoding="utf-8")
    prepared = prepare_corpus(data_cfg(p, "data.val_fraction=0"))
    docs = list(prepared.documents("train"))
    assert PERSIAN in docs
    assert "\u200c" in docs[0]  # zero-width non-joiner kept


def test_persian_tokenizer_keeps_letters(tmp_path):
    p = tmp_path / "fa.txt"
    p.write_text("\n\n".join([PERSIAN] * 3 + [f"{PERSIAN} {i}" for i in range(50)]), encoding="utf-8")
    cfg = build_config({}, [f"data.corpus={p}", "data.min_chars=1", "tokenizer.vocab_size=300", "data.seq_length=16"])
    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
    tok = data.tokenizer
    assert tok.unk_token not in tok.tokenize(PERSIAN)
    assert tok.decode(tok(PERSIAN)["input_ids"], skip_special_tokens=True).replace(" ", "") == PERSIAN.replace(" ", "")


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "unigram"])
def test_tokenizer_types_load_with_autotokenizer(tmp_path, model):
    from transformers import AutoTokenizer

    cfg = build_config({}, [f"tokenizer.model={model}", "tokenizer.vocab_size=300"]).tokenizer
    lines = [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(300)]
    train_tokenizer(iter(lines), cfg, tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    ids = tok("the quick brown fox")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.mask_token == "[MASK]" and tok.pad_token == "[PAD]"
    assert tok.unk_token_id not in ids


def test_tokenizer_without_mask_token_is_rejected(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]").save_pretrained(tmp_path / "nomask")
    with pytest.raises(UserError, match="no mask token"):
        load_tokenizer(tmp_path / "nomask")


def test_shards_pack_blocks_and_are_cached(corpus_file):
    cfg = build_config({}, [f"data.corpus={corpus_file}", "tokenizer.vocab_size=200", "data.seq_length=32"])
    first = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
    stamp = (first.shards.directory / "train.bin").stat().st_mtime_ns
    second = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
    assert second.shards.directory == first.shards.directory
    assert (second.shards.directory / "train.bin").stat().st_mtime_ns == stamp  # reused, not rewritten
    tokens = first.shards.tokens("train")
    assert isinstance(tokens, np.memmap)
    # every document ends with [SEP]
    assert int((np.asarray(tokens) == first.tokenizer.sep_token_id).sum()) == first.shards.meta["train_docs"]
    blocks = packed_blocks(first.shards, "train", 32, first.tokenizer.cls_token_id)
    b = blocks.gather([0, 1])
    assert b.shape == (2, 32) and (b[:, 0] == first.tokenizer.cls_token_id).all()
    assert np.array_equal(b[0, 1:], tokens[:31]) and np.array_equal(b[1, 1:], tokens[31:62])
    assert first.tokenizer.pad_token_id not in b  # packing: no padding
    counts = first.shards.unigram_counts()
    assert counts.sum() == first.shards.meta["train_tokens"]


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "no usable documents"),
        (b"\x00\x01\x02binary\x00", "looks binary"),
        ("caf\u00e9 au lait, a long enough line\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_corpus_files(tmp_path, content, needle):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(UserError, match=needle):
        prepare_corpus(data_cfg(p))


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("/no/such/file.txt", "does not exist"),
        ("builtin:nope", "choose one of"),
    ],
)
def test_bad_corpus_specs(spec, needle):
    with pytest.raises(UserError, match=needle):
        prepare_corpus(data_cfg(spec))


def test_missing_text_column(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"content": "hello there"}\n', encoding="utf-8")
    with pytest.raises(UserError, match="no column 'text'.*data.text_column"):
        prepare_corpus(data_cfg(p))


def test_hugging_face_dataset_path(tmp_path):
    """`hf:NAME` goes through datasets.load_dataset; a local dataset directory exercises it offline."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "train.jsonl").write_text(
        '{"text": "from a dataset"}\n{"text": "second record"}\n', encoding="utf-8"
    )
    assert list(iter_documents(f"hf:{tmp_path / 'ds'}")) == ["from a dataset", "second record"]
    with pytest.raises(UserError, match="no column 'body'"):
        list(iter_documents(f"hf:{tmp_path / 'ds'}", column="body"))
