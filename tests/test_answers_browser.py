"""The answers page, English and Persian, in one real browser (Debian's chromium through playwright, as the
playground's browser test runs it): every question is there, nothing is fetched, Persian reads right to left."""

from __future__ import annotations

import re
import shutil

import pytest

from masklab.study.answers.build import write_answers
from masklab.study.answers.gather import default_source, is_study_folder
from masklab.study.answers.text import QUESTIONS, TEXT

ZWNJ = "\u200c"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Both pages from the shipped studies (or, before any is shipped, the test's own finished study)."""
    source = default_source()
    if not source.is_dir() or not any(is_study_folder(p) for p in source.iterdir()):
        source = tmp_path_factory.mktemp("studies")
        folder = source / "q1-init"
        folder.mkdir()
        (folder / "results.csv").write_text(
            "trial,state,phase,init,task,seed,value,seconds,key,retry_of,error\n"
            "0,complete,grid,random,builtin:rt-sentiment,0,0.5,60,a,,\n"
            "1,complete,grid,builtin:minilm,builtin:rt-sentiment,0,0.8,60,b,,\n"
        )
        (folder / "report.md").write_text("# Study q1-init\n")
    out = tmp_path_factory.mktemp("answers")
    for lang in ("en", "fa"):
        write_answers([source], out, lang)
    return out


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_page_opens_offline_with_all_seven_questions(pages, lang):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    if executable is None:
        pytest.skip("no chromium on this machine (scripts/setup.sh installs Debian's chromium where it runs as root)")
    page_file = pages / ("answers.html" if lang == "en" else "answers.fa.html")
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        except playwright.Error as exc:  # a chromium that cannot start here (no display libraries, ...) is no chromium
            pytest.skip(f"{executable} could not start: {str(exc).splitlines()[0]}")
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_timeout(300)  # any late fetch (a font, an image) would be recorded by now
        for q, _ in QUESTIONS:
            heading = page.locator(f"h2#{q.lower()}")
            assert heading.count() == 1 and re.split(r"`|\[\[", TEXT[lang][q])[0][:20] in heading.inner_text()
        names = [name for _, group in QUESTIONS for name in group]
        assert all(page.locator(f"section#{name}").count() == 1 for name in names)
        direction = page.evaluate("document.documentElement.dir")
        language = page.evaluate("document.documentElement.lang")
        text = page.evaluate("document.body.innerText")
        if lang == "fa":
            assert direction == "rtl" and language == "fa"
            assert ZWNJ in text and f"می{ZWNJ}" in text
            assert page.locator("h1").evaluate("e => getComputedStyle(e).direction") == "rtl"
            command = page.locator("code").first
            assert command.evaluate("e => getComputedStyle(e).direction") == "ltr"
        else:
            assert direction == "ltr" and language == "en"
        browser.close()
    local = ("file://", "data:", "about:")
    outside = [u for u in requests if not (u.startswith(local) or u.startswith(("http://127.0.0.1", "http://[::1]")))]
    assert requests and not outside, outside[:5]
    assert requests[0] == page_file.as_uri()
