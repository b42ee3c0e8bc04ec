// The page: Director (scenes, settings, the live job), Editor (segments), My jobs.
// State lives here; the backend (local or Firebase) only moves data.
import { createBackend, loadConfig } from "./backend.js";
import { CallError } from "./call-error.js";
import { MODEL, estimate, formatCost, formatSeconds } from "./estimate.js";
import { isFinal, statusMessage } from "./jobs.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["director", "editor", "jobs"];
const SETTINGS = ["segmentSeconds", "aspectRatio", "resolution", "chain", "generateAudio"];

const state = {
  backend: null,
  view: "director",
  prompts: [""],
  jobId: null,
  job: null,
  loadForm: false, // put the open job's request in the Director's form when it arrives
  unwatch: null,
  lastMessage: null,
};

// -- views and navigation ----------------------------------------------------------------------

function showView(view, { focus = false } = {}) {
  state.view = VIEWS.includes(view) ? view : "director";
  for (const name of VIEWS) $(name).hidden = name !== state.view;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === state.view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (state.view === "jobs") refreshJobs();
  writeHash();
  if (focus) $(`${state.view}-title`).focus();
}

// #director, #editor/JOB_ID…: the view and the open job survive a reload and can be shared.
function writeHash() {
  const hash = state.jobId ? `#${state.view}/${state.jobId}` : `#${state.view}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function readHash() {
  const [view, jobId] = location.hash.slice(1).split("/");
  return { view: view || "director", jobId: jobId || null };
}

// -- the scene list ------------------------------------------------------------------------------

function renderPrompts(focusId = null) {
  const list = $("prompts");
  list.replaceChildren(
    ...state.prompts.map((prompt, i) => {
      const item = document.createElement("li");
      item.className = "prompt";
      const n = i + 1;
      item.innerHTML = `
        <label for="prompt-${i}">Scene ${n}</label>
        <textarea id="prompt-${i}" rows="2" aria-describedby="prompt-${i}-error"></textarea>
        <p id="prompt-${i}-error" class="field-error" hidden></p>
        <div class="prompt-actions">
          <button type="button" id="prompt-${i}-up" data-action="up" aria-label="Move scene ${n} up"
            ${i === 0 ? "disabled" : ""}>↑ Up</button>
          <button type="button" id="prompt-${i}-down" data-action="down" aria-label="Move scene ${n} down"
            ${i === state.prompts.length - 1 ? "disabled" : ""}>↓ Down</button>
          <button type="button" id="prompt-${i}-remove" data-action="remove" aria-label="Remove scene ${n}"
            ${state.prompts.length === 1 ? "disabled" : ""}>Remove</button>
        </div>`;
      const text = item.querySelector("textarea");
      text.value = prompt;
      text.addEventListener("input", () => {
        state.prompts[i] = text.value;
        clearError(`prompt-${i}`);
        renderEstimate();
      });
      item.querySelector(".prompt-actions").addEventListener("click", (event) => {
        const action = event.target.closest("button")?.dataset.action;
        if (action) changePrompts(action, i);
      });
      return item;
    }),
  );
  if (focusId && $(focusId) && !$(focusId).disabled) $(focusId).focus();
  renderEstimate();
}

function changePrompts(action, i) {
  const p = state.prompts;
  if (action === "up" && i > 0) {
    [p[i - 1], p[i]] = [p[i], p[i - 1]];
    renderPrompts(i - 1 > 0 ? `prompt-${i - 1}-up` : `prompt-${i - 1}-down`);
  } else if (action === "down" && i < p.length - 1) {
    [p[i], p[i + 1]] = [p[i + 1], p[i]];
    renderPrompts(i + 1 < p.length - 1 ? `prompt-${i + 1}-down` : `prompt-${i + 1}-up`);
  } else if (action === "remove" && p.length > 1) {
    p.splice(i, 1);
    renderPrompts(`prompt-${Math.min(i, p.length - 1)}`);
  }
}

function addPrompt() {
  state.prompts.push("");
  renderPrompts(`prompt-${state.prompts.length - 1}`);
}

function pastePrompts() {
  const lines = $("paste-text")
    .value.split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  if (!lines.length) return;
  // Replace a lone empty scene rather than keep it in front of the pasted ones.
  if (state.prompts.length === 1 && !state.prompts[0].trim()) state.prompts = [];
  state.prompts.push(...lines);
  $("paste-text").value = "";
  renderPrompts(`prompt-${state.prompts.length - lines.length}`);
}

// -- settings, estimate, request ------------------------------------------------------------------

function readRequest() {
  return {
    prompts: [...state.prompts], // sent as typed: the server's validator is the one judge
    segmentSeconds: Number($("segmentSeconds").value),
    aspectRatio: $("aspectRatio").value,
    resolution: $("resolution").value,
    chain: $("chain").checked,
    generateAudio: $("generateAudio").checked,
    requestId: crypto.randomUUID(),
  };
}

// Open a past job in the Director: its scenes and settings go back in the form, to edit and
// Generate again. A setting the request leaves out gets the form's own default.
function fillForm(request) {
  clearErrors();
  state.prompts = request.prompts?.length ? [...request.prompts] : [""];
  for (const id of SETTINGS) {
    const control = $(id);
    if (control.type === "checkbox") {
      control.checked = typeof request[id] === "boolean" ? request[id] : control.defaultChecked;
    } else {
      const value = String(request[id] ?? "");
      const option = [...control.options].find((o) => o.value === value) ?? [...control.options].find((o) => o.defaultSelected);
      control.value = option.value;
    }
  }
  renderPrompts();
}

function renderEstimate() {
  const request = readRequest();
  const { seconds, cost } = estimate({ ...request, prompts: request.prompts.length });
  const local = state.backend?.mode === "local" ? " The local preview renderer itself is free." : "";
  $("estimate").textContent =
    `Video length: ${formatSeconds(seconds)} (${request.prompts.length} × ${request.segmentSeconds} s). ` +
    `Estimated model cost: ${formatCost(cost)} with ${MODEL} at list price.${local}`;
}

function clearErrors() {
  for (const el of document.querySelectorAll("#request-form .field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of document.querySelectorAll("#request-form [aria-invalid]")) el.removeAttribute("aria-invalid");
}

function clearError(controlId) {
  const error = $(`${controlId}-error`);
  if (error) error.hidden = true;
  $(controlId)?.removeAttribute("aria-invalid");
}

// The server names the field (`prompts[1]`, `segmentSeconds`); show each rule beside its control.
function showErrors(error) {
  clearErrors();
  const problems = error.details?.problems ?? [{ field: error.details?.field, rule: error.message }];
  let first = null;
  for (const { field, rule } of problems) {
    const scene = /^prompts\[(\d+)\]$/.exec(field ?? "");
    const controlId = scene ? `prompt-${scene[1]}` : SETTINGS.includes(field) ? field : field === "prompts" ? "prompts" : null;
    const target = controlId ? $(`${controlId}-error`) : null;
    const shown = target ?? $("request-error");
    shown.textContent = target ? rule : `${field ?? "request"}: ${rule}`;
    shown.hidden = false;
    if (controlId && $(controlId)) {
      $(controlId).setAttribute("aria-invalid", "true");
      first ??= $(controlId);
    }
  }
  (first ?? $("request-error")).focus?.();
}

async function submit(request) {
  const button = $("generate");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  clearErrors();
  try {
    const { jobId } = await state.backend.trigger(request);
    openJob(jobId, "director");
  } catch (error) {
    if (error instanceof CallError && error.status === "INVALID_ARGUMENT") showErrors(error);
    else showErrors({ message: error.message, details: { field: "request" } });
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// -- the open job ------------------------------------------------------------------------------------

// loadForm: put the job's request in the Director's form (a job opened from My jobs or the
// address), not after Generate, where the form already holds what the user typed.
function openJob(jobId, view = state.view, { loadForm = false, focus = false } = {}) {
  state.unwatch?.();
  state.jobId = jobId;
  state.job = null;
  state.loadForm = loadForm;
  state.lastMessage = null;
  $("status-log").replaceChildren();
  $("segments").replaceChildren();
  $("job").hidden = false;
  state.unwatch = state.backend.watch(jobId, onJob, (error) => {
    $("job-error").textContent = `Job updates stopped: ${error.message}`;
    $("job-error").hidden = false;
  });
  showView(view, { focus });
}

function onJob(job) {
  state.job = job;
  if (state.loadForm && job.request) {
    state.loadForm = false;
    fillForm(job.request);
  }
  const message = statusMessage(job);
  // Every state received is kept in the history, however briefly it lasted (a local stitch takes
  // milliseconds); the live region above announces the latest.
  if (message !== state.lastMessage) {
    state.lastMessage = message;
    const entry = document.createElement("li");
    entry.textContent = `${job.progress}% — ${message}`;
    $("status-log").append(entry);
  }
  renderJob(job, message);
  renderEditor(job, message);
  if (isFinal(job) && state.view === "jobs") refreshJobs();
}

function renderJob(job, message) {
  const bar = $("progress");
  bar.setAttribute("aria-valuenow", String(job.progress));
  bar.setAttribute("aria-valuetext", `${job.progress}%, ${message}`);
  bar.querySelector(".fill").style.width = `${job.progress}%`;
  bar.dataset.status = job.status;
  $("status").textContent = message;
  $("cancel").hidden = isFinal(job);
  $("retry").hidden = job.status !== "failed" && job.status !== "cancelled";
  const failed = job.status === "failed";
  $("job-error").hidden = !failed;
  $("job-error").textContent = failed ? `Reason: ${job.error}${job.errorStep ? ` (step ${job.errorStep})` : ""}` : "";
  const done = job.status === "completed" && job.videoUrl;
  $("result").hidden = !done;
  if (done) {
    setSource($("final-video"), job.videoUrl);
    $("download").href = job.videoUrl;
    $("download").setAttribute("download", `longform-${job.jobId}.mp4`);
  }
}

function renderEditor(job, message) {
  $("editor-empty").hidden = true;
  $("editor-job").hidden = false;
  $("editor-status").textContent = `${job.progress}% — ${message}`;
  const list = $("segments");
  if (list.children.length !== job.segments.length) {
    list.replaceChildren(
      ...job.segments.map((segment) => {
        const item = document.createElement("li");
        item.className = "segment";
        item.innerHTML = `
          <h3>Scene ${segment.index + 1}</h3>
          <p class="segment-prompt"></p>
          <p class="segment-status"></p>
          <video controls preload="metadata" aria-label="Scene ${segment.index + 1} preview" hidden></video>
          <p class="segment-none">No preview yet.</p>`;
        return item;
      }),
    );
  }
  job.segments.forEach((segment, i) => {
    const item = list.children[i];
    item.dataset.status = segment.status;
    item.querySelector(".segment-prompt").textContent = segment.prompt;
    const error = segment.error ? `: ${segment.error}` : "";
    item.querySelector(".segment-status").textContent = `Status: ${segment.status}${error}`;
    const video = item.querySelector("video");
    video.hidden = !segment.url;
    item.querySelector(".segment-none").hidden = Boolean(segment.url);
    item.querySelector(".segment-none").textContent =
      segment.status === "cancelled" ? "Not made: the job was cancelled first." : "No preview yet.";
    if (segment.url) setSource(video, segment.url);
  });
  const final = $("editor-final");
  const done = job.status === "completed" && job.videoUrl;
  final.hidden = !done;
  $("editor-final-none").hidden = Boolean(done);
  $("editor-final-none").textContent = isFinal(job) && !done ? `No video: the job ${job.status}.` : "Not ready yet.";
  if (done) setSource(final, job.videoUrl);
}

// Setting the same src again would restart a playing video.
function setSource(video, url) {
  if (video.getAttribute("src") !== url) video.setAttribute("src", url);
}

async function cancelJob() {
  const button = $("cancel");
  button.disabled = true;
  try {
    await state.backend.cancel(state.jobId);
  } catch (error) {
    $("job-error").textContent = `Could not cancel: ${error.message}`;
    $("job-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

function retryJob() {
  if (!state.job) return;
  const { requestId, ...request } = state.job.request;
  submit({ ...request, requestId: crypto.randomUUID() });
}

// -- My jobs -------------------------------------------------------------------------------------------

async function refreshJobs() {
  const list = $("job-list");
  $("jobs-error").hidden = true;
  let jobs;
  try {
    jobs = await state.backend.listJobs();
  } catch (error) {
    $("jobs-error").textContent = error.message;
    $("jobs-error").hidden = false;
    return;
  }
  $("jobs-empty").hidden = jobs.length > 0;
  list.replaceChildren(
    ...jobs.map((job) => {
      const item = document.createElement("li");
      item.className = "job-item";
      item.dataset.jobId = job.jobId;
      const first = job.segments[0]?.prompt ?? "";
      const when = new Date(job.timings.createdAt).toLocaleString();
      item.innerHTML = `
        <p class="job-summary"><strong></strong></p>
        <p class="job-meta"><span class="badge" data-status="${job.status}">${job.status}</span>
          ${job.progress}% · ${job.segments.length} scene(s) · <time datetime="${job.timings.createdAt}">${when}</time></p>
        <div class="actions">
          <button type="button" data-open="director">Open in Director</button>
          <button type="button" data-open="editor">Open in Editor</button>
        </div>`;
      item.querySelector("strong").textContent = first.length > 80 ? `${first.slice(0, 80)}…` : first;
      for (const button of item.querySelectorAll("button")) {
        button.setAttribute("aria-label", `${button.textContent}: ${first.slice(0, 40)} (${job.status})`);
        const view = button.dataset.open;
        // The button's view goes away: focus moves to the heading of the one it opens.
        button.addEventListener("click", () => openJob(job.jobId, view, { loadForm: view === "director", focus: true }));
      }
      return item;
    }),
  );
}

// -- start -----------------------------------------------------------------------------------------------

async function start() {
  renderPrompts();
  $("add-prompt").addEventListener("click", addPrompt);
  $("paste-add").addEventListener("click", pastePrompts);
  for (const id of SETTINGS) {
    $(id).addEventListener("change", () => {
      clearError(id);
      renderEstimate();
    });
  }
  $("request-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit(readRequest());
  });
  $("cancel").addEventListener("click", cancelJob);
  $("retry").addEventListener("click", retryJob);
  $("refresh-jobs").addEventListener("click", refreshJobs);
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  for (const view of VIEWS) $(`${view}-title`).tabIndex = -1;

  try {
    state.backend = await createBackend(await loadConfig());
  } catch (error) {
    $("who").textContent = `Could not connect: ${error.message}`;
    return;
  }
  $("who").textContent = state.backend.who;
  document.body.dataset.mode = state.backend.mode;
  renderEstimate();
  const { view, jobId } = readHash();
  if (jobId) openJob(jobId, view, { loadForm: true });
  else showView(view);
  document.body.dataset.ready = "true";
}

start();
