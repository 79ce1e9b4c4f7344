// The srgan page: pick or drop an image, submit it as a job, follow its progress,
// compare before and after, download. Uses only the public API (/v1/...).
"use strict";

const state = { file: null, jobId: null, stopped: false, urls: [] };

async function loadModels() {
  const response = await fetch("/v1/models", { headers: authHeaders() });
  if (!response.ok) {
    setStatus(await errorText(response), true);
    return;
  }
  const select = $("model");
  select.replaceChildren();
  for (const model of await response.json()) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = `${model.name} (x${model.scale})`;
    option.title = model.description;
    option.selected = model.default;
    select.append(option);
  }
  setStatus("");
}

function busy(running) {
  $("start").disabled = running || !state.file;
  $("cancel").hidden = !running;
  $("progress").hidden = !running;
}

async function start() {
  if (!state.file) return;
  const form = new FormData();
  form.append("image", state.file);
  form.append("model", $("model").value);
  if ($("scale").value) form.append("outscale", $("scale").value);
  form.append("format", $("format").value);
  state.stopped = false;
  busy(true);
  $("progress").value = 0;
  setStatus("Uploading...");
  try {
    const response = await fetch("/v1/jobs", { method: "POST", body: form, headers: authHeaders() });
    if (!response.ok) throw new Error(await errorText(response));
    const job = await response.json();
    state.jobId = job.id;
    await follow(job.id);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    busy(false);
  }
}

async function follow(jobId) {
  for (;;) {
    if (state.stopped) return;
    const response = await fetch(`/v1/jobs/${jobId}`, { headers: authHeaders() });
    if (response.status === 429) {
      await sleep(1000 * Number(response.headers.get("Retry-After") || 1));
      continue;
    }
    if (!response.ok) throw new Error(await errorText(response));
    const job = await response.json();
    $("progress").value = job.progress;
    if (job.state === "done") return showResult(job);
    if (job.state === "failed") throw new Error(`Failed: ${job.error}`);
    const percent = Math.round(job.progress * 100);
    setStatus(job.state === "queued" ? "Waiting in the queue..." : `Upscaling... ${percent}%`);
    await sleep(POLL_MS);
  }
}

async function showResult(job) {
  const response = await fetch(job.result_url, { headers: authHeaders() });
  if (!response.ok) throw new Error(await errorText(response));
  const blob = await response.blob();
  for (const url of state.urls) URL.revokeObjectURL(url);
  const after = URL.createObjectURL(blob);
  const before = URL.createObjectURL(state.file);
  state.urls = [after, before];
  await Promise.all([loadImage($("after"), after), loadImage($("before"), before)]);
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "image";
  const extension = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" }[blob.type] || "png";
  const scale = job.params.outscale ? `x${job.params.outscale}` : "x4";
  const link = $("download");
  link.href = after;
  link.download = `${stem}_${scale}.${extension}`;
  const image = $("after");
  $("result-info").textContent =
    `${job.input.width}x${job.input.height} -> ${image.naturalWidth}x${image.naturalHeight}, ` +
    `${job.params.model}, ${Math.ceil(blob.size / 1024)} KB`;
  $("result-panel").hidden = false;
  setStatus("Done.");
}

async function cancel() {
  state.stopped = true;
  if (state.jobId) {
    await fetch(`/v1/jobs/${state.jobId}`, { method: "DELETE", headers: authHeaders() });
  }
  busy(false);
  setStatus("Cancelled.");
}

function moveSlider() {
  const value = Number($("slider").value);
  $("before").style.clipPath = `inset(0 ${100 - value}% 0 0)`;
  $("divider").style.left = `${value}%`;
}

function setUp() {
  setUpApiKey(loadModels);
  setUpFileInput((file) => { state.file = file; });
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", cancel);
  $("slider").addEventListener("input", moveSlider);
  moveSlider();
  loadModels();
}

setUp();
