// What both pages (the upscaler and the blind A/B comparison) share: the API key box,
// errors in words, the drop zone. Loaded before the page's own script.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 400;
const KEY_STORAGE = "srgan-api-key";

function authHeaders(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function errorText(response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail)) detail = body.detail.map((d) => d.msg).join("; ");
  } catch (_) { /* not JSON */ }
  if (response.status === 401) {
    $("key-box").open = true;
    return `${detail}. Enter an API key below.`;
  }
  const retry = response.headers.get("Retry-After");
  return retry ? `${detail} (retry in ${retry} s)` : detail;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function loadImage(element, url) {
  return new Promise((resolve, reject) => {
    element.onload = () => resolve();
    element.onerror = () => reject(new Error("the browser could not show the image"));
    element.src = url;
  });
}

// The file the user picked or dropped goes to `onFile` once it is named on the page.
function setUpFileInput(onFile) {
  const chosen = (file) => {
    if (!file) return;
    $("drop-text").textContent = `${file.name} (${Math.ceil(file.size / 1024)} KB)`;
    $("start").disabled = false;
    setStatus("");
    onFile(file);
  };
  const drop = $("drop-zone");
  $("file-input").addEventListener("change", (event) => chosen(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    chosen(event.dataTransfer.files[0]);
  });
}

// The key is kept in the browser; `onChange` reloads what depends on it.
function setUpApiKey(onChange) {
  $("api-key").value = localStorage.getItem(KEY_STORAGE) || "";
  $("api-key").addEventListener("change", () => {
    localStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    onChange();
  });
}
