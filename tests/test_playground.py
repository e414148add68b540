"""The playground: its functions, its API through gradio_client, and one real browser (Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from masklab.errors import UserError

os.environ.setdefault(
    "GRADIO_ANALYTICS_ENABLED", "False"
)  # read when gradio is imported, as `masklab playground` sets it
gr = pytest.importorskip("gradio")

MASKLAB = [sys.executable, "-m", "masklab.cli"]
PAIR = "w10 w11 w10 w11 w10 w11 w10 w11"


@pytest.fixture(scope="module")
def trained_run(tiny_tokenizer, tmp_path_factory):
    """A run directory whose tiny BERT has memorised the phrase 'w10 w11' repeated (so fillers are predictable),
    with a config.yaml naming the tokenizer's corpus, a summary.json and a metrics.jsonl."""
    from transformers import BertConfig, BertForMaskedLM

    from masklab.data.prepare import prepare_corpus, training_lines  # noqa: F401  (the corpus the tokenizer came from)

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    model = BertForMaskedLM(config)
    ids = tiny_tokenizer(PAIR)["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = torch.tensor([ids] * 16)
    for _ in range(150):  # mask one random position per row and learn to fill it
        labels = torch.full_like(batch, -100)
        inputs = batch.clone()
        where = torch.randint(1, len(ids) - 1, (16,))
        labels[torch.arange(16), where] = batch[torch.arange(16), where]
        inputs[torch.arange(16), where] = tiny_tokenizer.mask_token_id
        loss = model(input_ids=inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    run = tmp_path_factory.mktemp("run")
    model.save_pretrained(run / "checkpoint")
    tiny_tokenizer.save_pretrained(run / "checkpoint")
    (run / "summary.json").write_text(
        json.dumps({"masked_accuracy": 0.91, "objective": "mlm", "corpus": {"train_docs": 3}})
    )
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 5.0 / s, "lr": 1e-3}) + "\n" for s in range(1, 30))
        + json.dumps({"step": 29, "val_masked_accuracy": 0.9})
        + "\n{cut short"
    )
    return run, float(loss.detach())


@pytest.fixture(scope="module")
def loaded(trained_run):
    from masklab.playground.models import load_runs

    return load_runs([trained_run[0]])[0]


# ---------------------------------------------------------------------------------------------- functions


def test_fill_mask_is_the_hub_pipeline_schema_and_values(loaded):
    from transformers import pipeline

    from masklab.generate.fillmask import fill_mask

    hub = pipeline("fill-mask", model=loaded.model, tokenizer=loaded.tokenizer, device="cpu")
    for text in ("w10 w11 w10 [MASK] w10 w11", "w10 [MASK] w10 w11 [MASK] w11"):
        ours, theirs = fill_mask(loaded.model, loaded.tokenizer, text, top_k=4).hub(), hub(text, top_k=4)
        flat_ours = ours if isinstance(ours[0], dict) else [p for row in ours for p in row]
        flat_theirs = theirs if isinstance(theirs[0], dict) else [p for row in theirs for p in row]
        assert len(flat_ours) == len(flat_theirs)
        for a, b in zip(flat_ours, flat_theirs):
            assert set(a) == {"score", "token", "token_str", "sequence"}
            assert (a["token"], a["token_str"], a["sequence"]) == (b["token"], b["token_str"], b["sequence"])
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    top = fill_mask(loaded.model, loaded.tokenizer, "w10 w11 w10 [MASK] w10 w11", top_k=1).proposals[0][0]
    assert top["token_str"].strip() == "w11" and top["score"] > 0.5  # the memorised phrase


def test_fill_mask_bad_input(loaded):
    from masklab.generate.fillmask import fill_mask

    with pytest.raises(UserError, match="no \\[MASK\\]"):
        fill_mask(loaded.model, loaded.tokenizer, "w10 w11 w10")
    long = " ".join(["w10 w11"] * 5000)  # 10,000 words
    filled = fill_mask(loaded.model, loaded.tokenizer, "w10 [MASK] " + long, max_tokens=loaded.max_tokens)
    assert "the rest was cut" in filled.notice and "10,0" in filled.notice
    assert filled.proposals[0][0]["token_str"].strip() == "w11"
    with pytest.raises(UserError, match="beyond the first"):
        fill_mask(loaded.model, loaded.tokenizer, long + " [MASK]", max_tokens=loaded.max_tokens)


def test_clicking_a_word_masks_it_in_any_script():
    from masklab.playground.fillmask import toggle_word, words

    assert [w for w, _, _ in words("Hello, [MASK] world!")] == ["Hello", ",", "[MASK]", "world", "!"]
    assert toggle_word("Hello, big world!", 2) == "Hello, [MASK] world!"
    assert toggle_word("Hello, [MASK] world!", 2) == "Hello, [MASK] world!"
    persian = "زبان فارسی زیباست"
    assert toggle_word(persian, 1) == "زبان [MASK] زیباست"
    assert toggle_word(persian, 7) == persian


def test_mask_preview_measures_the_configured_rate(loaded):
    from masklab.playground.maskview import preview_text

    text = " ".join(f"w{i % 50}" for i in range(60))
    n = len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
    preview = preview_text(loaded, text, "random", 0.3, seed=1)
    assert preview.stats["passes"] == 64 and preview.stats["eligible_tokens"] == 64 * n
    assert preview.stats["rate"] == pytest.approx(round(0.3 * n) / n)  # exact-count selection: the same count each pass
    assert 0.7 < preview.stats["mask_share"] < 0.9  # 80% of ~1,150 selections: binomial sd 1.2%
    kinds = [p.kind for p in preview.pieces]
    assert kinds[0] == "" and kinds[-1] == ""  # [CLS] and [SEP] are never predicted
    assert sum(k != "" for k in kinds) == round(0.3 * n)
    span = preview_text(loaded, text, "span", 0.3, seed=1)
    assert span.stats["mean_unit_tokens"] > 1.5  # spans, not single tokens
    other = preview_text(loaded, text, "random", 0.3, seed=2)
    assert [p.kind for p in other.pieces] != kinds  # the seed picks another masking


def test_mask_preview_long_text_and_bad_strategy(loaded):
    from masklab.playground.maskview import preview_text

    preview = preview_text(loaded, " ".join(["w10"] * 10_000), "whole_word", 0.15)
    assert "shows the first" in preview.notice and len(preview.pieces) == loaded.max_tokens
    with pytest.raises(UserError, match="unknown masking strategy"):
        preview_text(loaded, "w1 w2", "nonsense", 0.15)
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        preview_text(loaded, "w1 w2", "random", 1.5)
    with pytest.raises(UserError, match="empty"):
        preview_text(loaded, "   ", "random", 0.15)


def test_pos_preview_needs_a_tagger_for_the_texts_language(loaded):
    pytest.importorskip("spacy")
    from masklab.playground.maskview import preview_text

    english = preview_text(
        loaded, "w10 w11 w12 w13 w14 w15 w16 w17 w18 w19.", "pos", 0.4
    )  # the tiny vocabulary's words
    assert set(english.stats["share_by_pos"]) - {"none", "PUNCT"}  # spaCy tagged the words themselves
    with pytest.raises(UserError, match="tags English only.*parsivar-fa"):
        preview_text(loaded, "زبان فارسی بسیار زیباست و مردم آن را دوست دارند", "pos", 0.4)


def test_entity_preview_masks_named_entities_whole(tiny_checkpoint):
    pytest.importorskip("spacy")
    from transformers import AutoTokenizer

    from masklab.playground.maskview import features, masking_for
    from masklab.playground.models import load_run

    run = load_run(tiny_checkpoint)
    text = "Yesterday Barack Obama visited New York City with friends."
    ids, feats, _ = features(run, masking_for(run, "entity", 0.3), text, 64)
    tokens = AutoTokenizer.from_pretrained(tiny_checkpoint).convert_ids_to_tokens(ids.tolist())
    assert feats["phrases"].max() == 2 and (feats["phrases"] == 1).sum() >= 2  # two multi-word entities
    assert len(tokens) == len(feats["phrases"]) == len(feats["words"])


def test_pmi_preview_needs_the_runs_corpus(tiny_checkpoint):
    from masklab.playground.maskview import preview_text
    from masklab.playground.models import load_run

    with pytest.raises(UserError, match="learns its n-grams from the training corpus"):
        preview_text(load_run(tiny_checkpoint), "w1 w2 w3", "pmi", 0.15)


def test_generation_streams_steps_until_no_mask_is_left(loaded):
    from masklab.generate.run import GenerateConfig
    from masklab.playground.stream import Step, stream_generate

    events = list(
        stream_generate(
            loaded, GenerateConfig(strategy="mask-predict", steps=4, seed=3, n=2), template="w10 w11 [MASK]*4 w10 w11"
        )
    )
    steps, report = events[:-1], events[-1]
    assert all(isinstance(e, Step) for e in steps) and isinstance(report, dict)
    assert [s.step for s in steps] == [1, 2, 3, 4] and all(s.steps == 4 for s in steps)
    masks = [[t.count("[MASK]") for t in s.texts] for s in steps]
    assert masks[0] == [3, 3] and masks[-1] == [0, 0]  # mask-predict: 4 * 3/4 re-masked after step 1
    assert [s["text"] for s in report["samples"]] == steps[-1].texts
    assert all(s["given_text_intact"] for s in report["samples"])


def test_strategy_settings_typed_as_the_page_writes_them():
    from masklab.generate.settings import parse_settings
    from masklab.playground.app import strategy_defaults

    assert parse_settings("k=2, burn_in=0.5") == {"k": 2, "burn_in": 0.5}
    assert parse_settings(strategy_defaults("diffusion")) == {"remasking": "low_confidence", "block_length": 0}
    assert parse_settings("") == {}
    with pytest.raises(UserError, match="not KEY=VALUE"):
        parse_settings("k2")


def test_generation_errors_reach_the_caller(loaded):
    from masklab.generate.run import GenerateConfig
    from masklab.playground.stream import stream_generate

    long = " ".join(["w10 w11"] * 5000)  # 10,000 words
    with pytest.raises(UserError, match="the model reads at most 64"):
        list(stream_generate(loaded, GenerateConfig(), template=long + " [MASK]"))
    *steps, report = stream_generate(loaded, GenerateConfig(length=8, steps=2), prompt=long)
    assert "its last 54" in report["notice"] and len(steps) == 2
    assert report["samples"][0]["text"].startswith("w10 w11") or report["samples"][0]["text"].startswith("w11")

    with pytest.raises(UserError, match="gibbs"):
        list(stream_generate(loaded, GenerateConfig(strategy="gibbs", settings={"k": 0}), template="w1 [MASK]*3"))


def test_scores_rank_sentences_and_refuse_bad_input(loaded):
    from masklab.playground.scores import MAX_SENTENCES, score_sentences

    rows = score_sentences(loaded, [PAIR, "w10 w11 w10 w11 w33 w11 w10 w11", PAIR])
    assert rows[0]["score"] == pytest.approx(rows[2]["score"])  # the same sentence scores the same
    assert rows[0]["score"] > rows[1]["score"]  # the memorised phrase beats a broken one
    assert sorted(r["rank"] for r in rows) == [1, 2, 3] and rows[1]["rank"] == 3
    assert rows[0]["kind"] == "pll_word" and rows[0]["tokens"] == 8
    with pytest.raises(UserError, match="at least one"):
        score_sentences(loaded, ["  "])
    with pytest.raises(UserError, match=str(MAX_SENTENCES)):
        score_sentences(loaded, ["w1"] * (MAX_SENTENCES + 1))
    with pytest.raises(UserError, match="not causal"):
        score_sentences(loaded, ["w1"], "causal")
    with pytest.raises(UserError, match="a string or a list of strings"):
        score_sentences(loaded, [PAIR, 3])


def test_a_string_is_one_sentence_not_its_characters(loaded):
    from masklab.playground.scores import score_sentences

    one = score_sentences(loaded, PAIR)
    assert len(one) == 1 and one[0]["sentence"] == PAIR and one[0]["tokens"] == 8
    assert one == score_sentences(loaded, [PAIR])


def test_runs_page_shows_summary_curves_and_a_studys_report(loaded, trained_run, tmp_path):
    from masklab.playground.models import load_run
    from masklab.playground.runs import curves, read_records, run_page

    records = read_records(trained_run[0] / "metrics.jsonl")  # the cut-short last line is skipped
    found = curves(records)
    assert set(found) == {"loss", "val_masked_accuracy"} and len(found["loss"][0]) == 29
    page = run_page(loaded)
    assert (
        "masked_accuracy" in page
        and "corpus.train_docs" in page
        and "<svg" in page
        and "http" not in page.split("<svg")[0]
    )
    study = tmp_path / "study"
    trial = study / "trials" / "abc123"
    shutil.copytree(trained_run[0], trial)
    (study / "report.html").write_text("<h1>Study q</h1><p>finding: 40% beats 15%</p>")
    (study / "results.csv").write_text("trial,state,key,value\n0,failed,zzz,\n1,complete,abc123,0.5\n")
    from_study = load_run(study)
    assert from_study.run == trial and "trial 1" in from_study.notice
    assert "srcdoc" in run_page(from_study) and "40% beats 15%" in run_page(from_study)


def test_runs_without_a_checkpoint_are_clear_errors(tmp_path):
    from masklab.playground.models import load_run, load_runs

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("train: {}\n")
    with pytest.raises(UserError, match="without a checkpoint"):
        load_run(tmp_path / "run")
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "missing")
    (tmp_path / "study" / "trials").mkdir(parents=True)
    with pytest.raises(UserError, match="no finished trial"):
        load_run(tmp_path / "study")
    with pytest.raises(UserError, match="one run or two"):
        load_runs([])
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    ).save_pretrained(tmp_path / "classifier")
    with pytest.raises(UserError, match="fine-tuned classifier"):
        load_run(tmp_path / "classifier")


def test_the_served_process_is_offline_and_quiet(monkeypatch):
    from masklab.playground.serve import quiet_gradio

    for name in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    quiet_gradio()
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"


def test_address_checks():
    from masklab.playground.serve import check_address, parse_auth

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} is in use on 127.0.0.1; pass --port \\d+"):
            check_address("127.0.0.1", port, None)
    with pytest.raises(UserError, match="--auth"):
        check_address("0.0.0.0", 7999, None)
    with pytest.raises(UserError, match="USER:PASSWORD"):
        parse_auth("nopassword")
    assert parse_auth("ann:secret") == ("ann", "secret")


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "does not exist"),
        (["{run}", "--port", "{busy}"], "is in use"),
        (["{run}", "--host", "0.0.0.0"], "--auth"),
    ],
)
def test_command_errors_are_one_line(args, message, trained_run, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        values = {"missing": tmp_path / "nothing", "run": trained_run[0], "busy": busy.getsockname()[1]}
        done = subprocess.run(
            [*MASKLAB, "playground", *[a.format(**values) for a in args]], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_open_address_warns_once(trained_run):
    """--host other than loopback (127.0.0.2: another address, still only this machine) warns once, not twice."""
    import urllib.error
    import urllib.request

    from masklab.playground.serve import any_free_port

    port = any_free_port("127.0.0.2")
    page = subprocess.Popen(
        [
            *MASKLAB,
            "playground",
            str(trained_run[0]),
            "--host",
            "127.0.0.2",
            "--port",
            str(port),
            "--auth",
            "ann:secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and page.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.2:{port}/", timeout=5)
                break
            except urllib.error.HTTPError:  # served (and asking for the password)
                break
            except OSError:
                time.sleep(0.5)
    finally:
        page.terminate()
        _, stderr = page.communicate(timeout=60)
    assert stderr.count("masklab: warning: serving on 127.0.0.2") == 1, stderr


# ---------------------------------------------------------------------------------------------- the served app


@pytest.fixture(scope="module")
def served(trained_run, tiny_checkpoint):
    """The app on two runs (the memorising one and a random one), on a free loopback port."""
    from masklab.playground.app import build_app
    from masklab.playground.models import load_runs
    from masklab.playground.serve import any_free_port, launch

    app = build_app(load_runs([trained_run[0], tiny_checkpoint]), example="w10 w11 w10 [MASK] w10 w11")
    port = any_free_port()
    launch(app, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served, verbose=False)


def test_api_names_its_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/fill_mask", "/mask_preview", "/generate", "/score"} <= set(endpoints)


def test_api_fill_mask_for_each_run(client, loaded):
    from masklab.generate.fillmask import fill_mask

    text = "w10 w11 w10 [MASK] w10 w11"
    first = client.predict(text=text, top_k=3, api_name="/fill_mask")
    expected = fill_mask(loaded.model, loaded.tokenizer, text, 3).hub()
    assert [p["token"] for p in first] == [p["token"] for p in expected]
    assert first[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-6)
    second = client.predict(text=text, top_k=3, run=1, api_name="/fill_mask")
    assert second != first  # the other model
    with pytest.raises(Exception, match="no \\[MASK\\]"):
        client.predict(text="w10 w11", api_name="/fill_mask")
    with pytest.raises(Exception, match="run must be 0 or 1"):
        client.predict(text=text, run=2, api_name="/fill_mask")


def test_api_mask_preview_generate_and_score(client):
    preview = client.predict(
        text=" ".join(f"w{i}" for i in range(40)), strategy="random", rate=0.25, api_name="/mask_preview"
    )
    assert sum(p["kind"] != "" for p in preview["pieces"]) == 10 and preview["targets"]["rate"] == 0.25
    job = client.submit(text="w10 w11 [MASK]*5", strategy="left-to-right", api_name="/generate")
    outputs = list(job)
    steps = [o for o in outputs if "step" in o]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5]  # one per token, each streamed
    assert outputs[-1]["samples"][0]["text"].startswith("w10 w11")
    rows = client.predict(sentences=[PAIR, "w10 w11 w10 w11 w33 w11 w10 w11"], api_name="/score")
    assert rows[0]["rank"] == 1 and rows[0]["score"] > rows[1]["score"]


def test_api_score_takes_a_string_as_one_sentence(client):
    rows = client.predict(sentences="the cat", api_name="/score")  # not t, h, e, c, a, t
    assert [r["sentence"] for r in rows] == ["the cat"] and rows[0]["rank"] == 1
    listed = client.predict(sentences=[PAIR], api_name="/score")
    assert client.predict(sentences=PAIR, api_name="/score") == listed


@pytest.mark.parametrize("size", [1, 1 << 20])
def test_uploads_are_refused(served, size):
    """The page has no file input: /gradio_api/upload takes nothing (it took any size, unauthenticated)."""
    import urllib.error
    import urllib.request

    boundary = "masklabboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"x" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        served + "gradio_api/upload",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413 and b"maximum allowed size of 0 bytes" in refused.value.read()


def test_no_file_outside_the_page_is_served(served):
    import urllib.error
    import urllib.request

    for path in ("gradio_api/file=/etc/passwd", "file=/etc/passwd", f"gradio_api/file={Path(__file__).resolve()}"):
        try:
            with urllib.request.urlopen(served + path, timeout=10) as response:
                assert b"root:" not in response.read() and response.status != 200
        except urllib.error.HTTPError as exc:
            assert exc.code in (403, 404)


# ---------------------------------------------------------------------------------------------- a real browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


def _type_into(page, elem_id: str, shown: str, text: str) -> None:
    """Types into a textbox on a tab just opened. The tab mounts its textbox with the text it shows first, and
    what is typed before that is replaced (a click would then act on the shown text), so wait for the mount."""
    box = f"document.querySelector('#{elem_id} textarea')"
    page.wait_for_function(f"({box} || {{}}).value === {json.dumps(shown)}", timeout=20_000)
    page.locator(f"#{elem_id} textarea").fill(text)
    page.wait_for_function(f"{box}.value === {json.dumps(text)}", timeout=20_000)


def test_browser_fill_mask_preview_generate(served, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    if executable is None:
        pytest.skip("no chromium on this machine (scripts/setup.sh installs Debian's chromium where it runs as root)")
    requests = []
    shots = Path(os.environ.get("MASKLAB_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        except playwright.Error as exc:  # a chromium that cannot start here (no display libraries, ...) is no chromium
            pytest.skip(f"{executable} could not start: {str(exc).splitlines()[0]}")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(served)
        box = page.locator("#fill-text textarea")
        page.wait_for_selector("#fill-out .ml-bar", timeout=20_000)  # the example, answered on load
        box.fill("w10 w11 w10 w11 w10 w11 [MASK] w11")  # its best filling is longer than anything the example gives
        page.locator("#fill-go").click()
        page.wait_for_function(
            "document.querySelector('#fill-out').innerText.includes('w10 w11 w10 w11 w10 w11 w10 w11')", timeout=20_000
        )
        out = page.locator("#fill-out")
        assert out.locator(".ml-bar").count() == 10  # top-5 for each of the two runs
        assert out.locator(".ml-word").first.inner_text().strip() == "w10"
        page.locator("#fill-words").get_by_text("w11").first.click()  # click a word: it becomes a second [MASK]
        page.wait_for_function(
            "document.querySelector('#fill-text textarea').value.startsWith('w10 [MASK] w10')", timeout=20_000
        )
        page.wait_for_function("document.querySelector('#fill-out').innerText.includes('[MASK] 2')", timeout=20_000)
        box.fill("w10 w11 w10 w11")
        page.locator("#fill-go").click()
        page.wait_for_selector("#fill-out .ml-error", timeout=20_000)
        assert "no [MASK]" in page.locator("#fill-out .ml-error").first.inner_text()
        page.screenshot(path=str(shots / "fill-mask.png"))

        page.get_by_role("tab", name="Mask preview").click()
        _type_into(page, "preview-text", "w10 w11 w10 union w10 w11", " ".join(f"w{i}" for i in range(20)))
        page.locator("#preview-go").click()
        page.wait_for_function(  # both runs masked the twenty words: w19 is shown, or is the original of a masked piece
            """() => { const ps = [...document.querySelectorAll('#preview-out .ml-preview p')];
                return ps.length == 2
                    && ps.every(p => p.innerText.includes('w19') || p.querySelector('[title="original: w19"]')); }""",
            timeout=20_000,
        )
        assert (
            page.locator(".ml-preview .mask, .ml-preview .random, .ml-preview .kept").count() == 2 * 3
        )  # 15% of 20, two runs
        assert "measured over 64 maskings" in page.locator("#preview-out").inner_text()
        page.screenshot(path=str(shots / "mask-preview.png"))

        page.get_by_role("tab", name="Generate").click()
        _type_into(  # the given text stays byte for byte
            page, "gen-text", "w10 w11 w10 [MASK]*2-4 w10 w11", "زبان فارسی [MASK] w10 w11 [MASK]*4 w10"
        )
        page.locator("#gen-go").click()
        page.wait_for_function(
            "document.querySelector('#gen-out').innerText.split('tokens in').length == 3", timeout=30_000
        )
        steps = page.locator("#gen-out .ml-step")
        assert steps.count() == 2 and "[MASK]" not in page.locator("#gen-out").inner_text()  # both runs wrote every gap
        assert "زبان فارسی" in steps.first.inner_text()
        assert steps.first.evaluate("e => getComputedStyle(e).direction") == "rtl"  # Persian: right to left
        page.screenshot(path=str(shots / "generate.png"))
        browser.close()
    assert requests and all(url.startswith(served) or url.startswith("data:") for url in requests), [
        u for u in requests if not u.startswith(served)
    ][:5]
