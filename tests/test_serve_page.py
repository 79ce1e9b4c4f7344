"""The web page in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): pick an image, upscale it through the jobs API, compare, download."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.serve_support import LiveServer, png_bytes, smooth_image, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; "
    ".ci/run installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the test extra)")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    # Loopback: keys are off by default, as for someone trying srgan on their machine.
    settings = {"models": ["anime-video", "bicubic"], "default_model": "anime-video"}
    live = start_server(tmp_path_factory.mktemp("serve-page") / "data", settings)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            accept_downloads=True,
        )
        yield context
        context.close()


def test_upscale_compare_and_download_in_the_page(server, browser, tmp_path):
    photo = tmp_path / "holiday.png"
    photo.write_bytes(png_bytes(smooth_image(48, 64, seed=5)))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(server.url)
    page.wait_for_selector("#model option[value='anime-video']", state="attached")
    assert page.input_value("#model") == "anime-video"  # the server's default
    assert page.is_disabled("#start")

    page.set_input_files("#file-input", str(photo))
    assert "holiday.png" in page.text_content("#drop-text")
    page.select_option("#scale", "2")
    page.click("#start")

    page.wait_for_selector("#result-panel:not([hidden])", timeout=60_000)
    assert page.text_content("#status") == "Done."
    size = page.eval_on_selector("#after", "image => [image.naturalWidth, image.naturalHeight]")
    assert size == [128, 96]
    assert page.get_attribute("#download", "href").startswith("blob:")
    assert page.get_attribute("#download", "download") == "holiday_x2.png"

    page.fill("#slider", "20")
    page.dispatch_event("#slider", "input")
    assert "80%" in page.eval_on_selector("#before", "e => e.style.clipPath")

    with page.expect_download() as download_info:
        page.click("#download")
    saved = tmp_path / "downloaded.png"
    download_info.value.save_as(saved)
    assert Image.open(saved).size == (128, 96)
    assert errors == []
    page.close()


def test_the_page_shows_server_errors(server, browser, tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image")
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#model option", state="attached")
    page.set_input_files("#file-input", str(text_file))
    page.click("#start")
    page.wait_for_selector("#status.error")  # (no wait_for_function: the page's CSP forbids eval)
    assert "not an image" in page.text_content("#status")
    page.close()
