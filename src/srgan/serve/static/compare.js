// The blind A/B page: upload an image, the server upscales it with two models it picks,
// the results are shown as A and B; a vote reveals the models. Uses only /v1/ab.
"use strict";

const state = { file: null, trial: null, urls: [] };

function showVoting(enabled) {
  for (const button of $("vote-buttons").querySelectorAll("button")) button.disabled = !enabled;
}

async function start() {
  if (!state.file) return;
  $("start").disabled = true;
  $("trial-panel").hidden = true;
  $("again").hidden = true;
  $("reveal").textContent = "";
  $("progress").hidden = false;
  $("progress").value = 0;
  setStatus("Uploading...");
  try {
    const form = new FormData();
    form.append("image", state.file);
    const response = await fetch("/v1/ab", { method: "POST", body: form, headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    state.trial = await response.json();
    await follow(state.trial.id);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("progress").hidden = true;
    $("start").disabled = !state.file;
  }
}

async function follow(trialId) {
  for (;;) {
    const response = await fetch(`/v1/ab/${trialId}`, { headers: authHeaders() });
    if (response.status === 429) {
      await sleep(1000 * Number(response.headers.get("Retry-After") || 1));
      continue;
    }
    if (!response.ok) throw new Error(await errorText(response));
    const trial = await response.json();
    $("progress").value = trial.progress;
    if (trial.state === "ready") return showPair(trial);
    if (trial.state === "failed") throw new Error(`Failed: ${trial.error}`);
    const percent = Math.round(trial.progress * 100);
    setStatus(trial.state === "queued" ? "Waiting in the queue..." : `Upscaling... ${percent}%`);
    await sleep(POLL_MS);
  }
}

async function fetchImage(url) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(await errorText(response));
  return URL.createObjectURL(await response.blob());
}

async function showPair(trial) {
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = await Promise.all([fetchImage(trial.images.a), fetchImage(trial.images.b)]);
  await Promise.all([loadImage($("image-a"), state.urls[0]), loadImage($("image-b"), state.urls[1])]);
  showVoting(true);
  $("trial-panel").hidden = false;
  setStatus("Look closely, then vote.");
}

async function vote(choice) {
  if (!state.trial) return;
  showVoting(false);
  try {
    const response = await fetch(`/v1/ab/${state.trial.id}/vote`, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ choice }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    const trial = await response.json();
    const picked = { a: "A", b: "B", same: "neither" }[trial.choice];
    $("reveal").textContent =
      `Thank you. A was ${trial.models.a}, B was ${trial.models.b}; you picked ${picked}.`;
    $("again").hidden = false;
    setStatus("Vote recorded.");
    await loadStats();
  } catch (error) {
    setStatus(error.message, true);
    showVoting(true);
  }
}

function percent(value) {
  return `${(100 * value).toFixed(0)}%`;
}

async function loadStats() {
  const response = await fetch("/v1/ab/stats", { headers: authHeaders() });
  if (!response.ok) {
    setStatus(await errorText(response), true);
    return;
  }
  const body = $("stats").querySelector("tbody");
  body.replaceChildren();
  for (const pair of await response.json()) {
    const [first, second] = pair.models;
    const row = document.createElement("tr");
    const rate = pair.win_rate === null
      ? "-"
      : `${percent(pair.win_rate)} (${percent(pair.interval_95[0])}-${percent(pair.interval_95[1])})`;
    for (const text of [
      `${first} vs ${second}`,
      String(pair.votes),
      `${pair.wins[first]} : ${pair.wins[second]}`,
      String(pair.same),
      rate,
    ]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
}

function setUp() {
  setUpApiKey(loadStats);
  setUpFileInput((file) => { state.file = file; });
  $("start").addEventListener("click", start);
  $("again").addEventListener("click", start);
  for (const button of $("vote-buttons").querySelectorAll("button")) {
    button.addEventListener("click", () => vote(button.dataset.choice));
  }
  loadStats();
}

setUp();
