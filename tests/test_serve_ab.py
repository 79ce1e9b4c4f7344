"""Blind A/B preference tests: the statistics, the trial store, the vote API against a
live `srgan serve`, `srgan serve votes`, and the /compare page in a real Chromium."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from PIL import Image

from srgan.serve.ab import PairTally, choose_pair, wilson_interval
from srgan.serve.ab_routes import _info
from srgan.serve.context import ServerContext
from srgan.serve.schemas import UpscaleParams
from srgan.serve.settings import ServeSettings
from tests.serve_support import LiveServer, decode, png_bytes, smooth_image, start_server

CHROMIUM = Path("/usr/bin/chromium")
SETTINGS = {
    "require_keys": True,
    "models": ["anime-video", "bicubic"],
    "default_model": "anime-video",
    "rate_limit": {"per_second": 50, "burst": 100},
}


def test_wilson_interval_known_values():
    # Wilson (1927) at 95%: 8 of 10 -> 0.490..0.943; 0 of 10 -> 0..0.278; 50 of 100
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(1 - high) and low == pytest.approx(0.4038, abs=1e-4)
    for bad in ((1, 0), (3, 2), (-1, 4)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    tally = PairTally("a", "b", 8, 2, 5)
    assert (tally.votes, tally.first_rate) == (15, 0.8)  # ties counted apart
    assert PairTally("a", "b", 0, 0, 3).interval is None


def test_pairs_are_balanced_and_sides_random():
    models = ["anime", "bicubic", "natural"]
    counts = {("anime", "bicubic"): 3, ("anime", "natural"): 3, ("bicubic", "natural"): 2}
    picks = Counter(choose_pair(models, counts) for _ in range(400))
    assert set(picks) == {("bicubic", "natural"), ("natural", "bicubic")}
    assert min(picks.values()) > 120  # either side first, about half the time each
    with pytest.raises(ValueError):
        choose_pair(["bicubic", "bicubic"], {})


def test_a_trial_is_ready_only_when_both_results_are(tmp_path):
    """The trial's state follows its two jobs in the real job store (no workers run)."""
    settings = ServeSettings(
        data_dir=tmp_path, models=("anime-video", "bicubic"), default_model="bicubic"
    )
    context = ServerContext(settings)
    jobs = [
        context.store.create(
            UpscaleParams(model=m), f"key-{m}", None, (8, 8), png_bytes(smooth_image(8, 8)), 10
        )
        for m in ("anime-video", "bicubic")
    ]
    trial = context.ab.create(None, ("bicubic", "anime-video"), (jobs[1].id, jobs[0].id))
    assert _info(context, trial).state == "queued"
    running = context.store.claim_next()
    assert running is not None and _info(context, trial).state == "running"
    context.store.result_path(running.id, "image/png").write_bytes(b"x")
    context.store.finish(running.id, "image/png", 1)
    info = _info(context, trial)
    assert info.state == "running" and info.images is None and info.models is None
    second = context.store.claim_next()
    assert second is not None
    context.store.fail(second.id, "out of memory")
    assert (_info(context, trial).state, _info(context, trial).error) == ("failed", "out of memory")
    voted = context.ab.vote(trial.id, "same")
    assert _info(context, voted).models == {"a": "bicubic", "b": "anime-video"}
    # unvoted trials are forgotten once their images have expired; votes are kept
    other = context.ab.create(None, ("bicubic", "anime-video"), (jobs[1].id, jobs[0].id))
    assert context.ab.prune(60, now=time.time() + 3600) == 1
    assert context.ab.get(other.id) is None and context.ab.get(trial.id) is not None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    live = start_server(tmp_path_factory.mktemp("serve-ab") / "data", SETTINGS)
    yield live
    live.stop()


@pytest.fixture
def key(server, cli):
    def make(name: str) -> str:
        result = cli("serve", "keys", "add", f"{name}-{time.monotonic_ns()}", "--data-dir",
                     server.data_dir)  # fmt: skip
        return result.stdout.strip()

    return make


def wait_for_trial(client: httpx.Client, trial_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        trial = client.get(f"/v1/ab/{trial_id}").raise_for_status().json()
        if trial["state"] in ("ready", "failed"):
            return trial
        time.sleep(0.1)
    raise AssertionError(f"trial {trial_id} not ready in {timeout_s} s")


def test_the_vote_api(server, key, cli):
    client, stranger = server.client(key("voter")), server.client(key("stranger"))
    photo = png_bytes(smooth_image(24, 32, seed=2))
    answer = client.post("/v1/ab", files={"image": ("p.png", photo, "image/png")})
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["models"] is None and started["images"] is None
    assert "anime-video" not in answer.text and "bicubic" not in answer.text
    trial = wait_for_trial(client, started["id"])
    assert trial["state"] == "ready" and trial["models"] is None
    images = [client.get(trial["images"][side]) for side in ("a", "b")]
    for image in images:
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert "anime" not in image.headers["content-disposition"]
    a, b = (decode(image.content) for image in images)
    assert a.shape == b.shape == (96, 128, 3) and (a != b).any()  # two different models
    # the trial belongs to the key that made it
    assert stranger.get(f"/v1/ab/{started['id']}").status_code == 404
    vote_url = f"/v1/ab/{started['id']}/vote"
    assert stranger.post(vote_url, json={"choice": "a"}).status_code == 404
    assert client.post(vote_url, json={"choice": "left"}).status_code == 422
    assert client.post(vote_url, json={"choice": "a", "x": 1}).status_code == 422

    voted = client.post(vote_url, json={"choice": "a"})
    assert voted.status_code == 200
    reveal = voted.json()["models"]
    assert sorted(reveal.values()) == ["anime-video", "bicubic"]
    again = client.post(vote_url, json={"choice": "b"})
    assert again.status_code == 409 and "already" in again.json()["detail"]
    assert client.get("/v1/ab/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.get("/v1/ab/not-a-trial").status_code == 422
    not_an_image = {"image": ("x.png", b"text", "image/png")}
    assert client.post("/v1/ab", files=not_an_image).status_code == 415

    stats = client.get("/v1/ab/stats").json()
    (pair,) = [p for p in stats if p["models"] == ["anime-video", "bicubic"]]
    winner = reveal["a"]
    assert pair["wins"][winner] >= 1 and pair["votes"] >= 1

    printed = json.loads(cli("serve", "votes", "--data-dir", server.data_dir, "--json").stdout)
    assert printed == stats
    table = cli("serve", "votes", "--data-dir", server.data_dir).stdout.splitlines()
    assert table[0].startswith("pair") and table[1].startswith("anime-video vs bicubic")


def test_votes_need_a_database(cli, tmp_path):
    result = cli("serve", "votes", "--data-dir", tmp_path / "nothing", check=False)
    assert result.returncode == 1 and "no server database" in result.stderr


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_compare_page_records_a_vote_in_chromium(server, key, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.test_serve_page import CHROMIUM_FLAGS

    secret = key("browser")
    photo = tmp_path / "garden.png"
    Image.fromarray(smooth_image(24, 32, seed=7)).save(photo)
    before = server.client(secret).get("/v1/ab/stats").json()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        page = browser.new_page()
        # the key as the page keeps it once entered (in this browser's storage)
        page.add_init_script(f"localStorage.setItem('srgan-api-key', '{secret}')")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{server.url}/compare")
        page.set_input_files("#file-input", str(photo))
        page.click("#start")
        page.wait_for_selector("#trial-panel:not([hidden])", timeout=120_000)
        sizes = [
            page.eval_on_selector(f"#image-{side}", "e => [e.naturalWidth, e.naturalHeight]")
            for side in ("a", "b")
        ]
        assert sizes == [[128, 96], [128, 96]]
        assert "anime" not in page.text_content("#trial-panel")
        page.click("#vote-b")
        page.wait_for_selector("#again:not([hidden])")
        reveal = page.text_content("#reveal")
        assert "A was" in reveal and "you picked B" in reveal
        page.wait_for_selector("#stats tbody tr")
        assert "anime-video vs bicubic" in page.text_content("#stats")
        # without a key the page says what is wrong and opens the key box
        page.close()
        anonymous = browser.new_page()
        anonymous.goto(f"{server.url}/compare")
        anonymous.wait_for_selector("#status.error")
        assert "API key" in anonymous.text_content("#status")
        assert anonymous.eval_on_selector("#key-box", "e => e.open")
        browser.close()
    assert errors == [], errors
    after = server.client(secret).get("/v1/ab/stats").json()
    count = lambda stats: sum(p["votes"] for p in stats)  # noqa: E731
    assert count(after) == count(before) + 1
