"""The redirect bookmark in a real browser: headless Chromium follows the 303."""

import shutil
import subprocess

import pytest

from harness import MAIN_HOST


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    if not path:
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    return path


def dump_dom(browser, url, profile):
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--dump-dom", url]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"chromium did not finish within 60 s: {e.stderr!r}") from None
    return r


def test_redirect_bookmark_lands_on_the_invite_page(browser, daemon, tmp_path):
    before = daemon.prosody.stored_tokens(MAIN_HOST)
    url = f"{daemon.api_url}?key={daemon.key}&redirect=true"
    r = dump_dom(browser, url, tmp_path / "profile")
    assert r.returncode == 0, f"chromium exit {r.returncode}: {r.stderr[-2000:]}"
    assert daemon.prosody.page_texts[0] in r.stdout, \
        f"the DOM is not the invite page:\n{r.stdout[:1500]}\n{daemon.describe()}"
    created = daemon.prosody.stored_tokens(MAIN_HOST) - before
    assert any(t in r.stdout for t in created), \
        f"the page shown is not an invite created by this visit (new: {created})"
