// The page: who is signed in, Director (scenes, settings, today's video time, the live job),
// Editor (the job's progress and cost; its scene cards in editor.js, its versions in versions.js),
// My jobs, and the confirm step before deleting a job.
// State lives here; the backend (local or Firebase, backend.js) only moves data.
import { createBackend, loadConfig } from "./backend.js";
import { CallError } from "./call-error.js";
import { createEditor } from "./editor.js";
import { costBrief, costWords, estimateUsd, formatSeconds, formatUsd, loadPrices, pricedAs } from "./estimate.js";
import { isFinal, statusMessage } from "./jobs.js";
import { FRESH_LINK_MS, linksStale } from "./links.js";
import { clearSource, showPlayer } from "./players.js";
import { createVersions } from "./versions.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["director", "editor", "jobs"];
const SETTINGS = ["segmentSeconds", "aspectRatio", "resolution", "chain", "generateAudio"];
// A link fetched this recently that fails to play has not expired: it is not asked for again.

const state = {
  backend: null,
  user: null, // {uid, name, anonymous} or null (backend.onUser)
  view: "director",
  prompts: [""],
  jobId: null,
  job: null,
  pendingJobId: null, // the address names a job, to open once someone is signed in
  loadForm: false, // put the open job's request in the Director's form when it arrives
  unwatch: null,
  lastMessage: null,
  links: null, // the open job's playback links: {jobId, key, videoUrl, segments: Map, fetchedAt, error}
  linksLoading: false,
  linksAgain: false,
  usage: undefined, // backend.usage()'s answer; undefined: not read yet; {error} when it failed
  prices: undefined, // prices.json (estimate.js); undefined: not read yet; {error} when it could not be
  refused: null, // the seconds of the video Generate was refused for (the budget), while it is shown
  usageSeq: 0,
  focusSignIn: false, // signed out: focus the sign-in section once it shows
  deleting: null, // the job the delete dialog is about: {jobId, opener, focusAfter, done, target}
  editor: null, // the Editor's scene cards and the pending edit (editor.js)
  versions: null, // the Editor's final video and version switcher (versions.js)
};

// Anonymous accounts may not start jobs (the backend says PERMISSION_DENIED): they count as signed out.
function signedIn() {
  return Boolean(state.user && !state.user.anonymous);
}

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
  const jobId = state.jobId ?? state.pendingJobId;
  const hash = jobId ? `#${state.view}/${jobId}` : `#${state.view}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function readHash() {
  const [view, jobId] = location.hash.slice(1).split("/");
  return { view: view || "director", jobId: jobId || null };
}

// -- who is signed in ----------------------------------------------------------------------------

function onUser(user, first) {
  const before = signedIn() ? state.user.uid : null;
  state.user = user;
  const now = signedIn() ? user.uid : null;
  renderAccount();
  if (!first && before === now) return; // the same person (a token refresh, a new name)
  if (before && state.jobId) closeJob(); // their job is not the next person's
  if (now && state.pendingJobId) {
    const jobId = state.pendingJobId;
    state.pendingJobId = null;
    openJob(jobId, state.view, { loadForm: true });
  } else {
    showView(state.view);
  }
  refreshUsage();
}

function renderAccount() {
  const { accounts } = state.backend;
  const user = state.user;
  const ok = signedIn();
  let who;
  if (!accounts) who = "Local mode: one local user, no cloud account";
  else if (!user) who = "Not signed in";
  else if (user.anonymous) who = "Signed in as a guest: guests cannot make videos";
  else who = `Signed in as ${user.name}`;
  $("who").textContent = who;
  $("sign-out").hidden = !accounts || !user;
  $("sign-in").hidden = !accounts || ok;
  if (state.focusSignIn && !$("sign-in").hidden) $("sign-in-title").focus();
  state.focusSignIn = false;
  $("generate-note").hidden = ok;
  if (!$("generate").hasAttribute("aria-busy")) $("generate").disabled = !ok;
}

async function signIn(how, button) {
  const error = $("sign-in-error");
  error.hidden = true;
  const buttons = [...$("sign-in").querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await state.backend.signIn(how);
    $("sign-in-password").value = "";
    $(`${state.view}-title`).focus(); // the sign-in section goes away with the focus in it
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    for (const b of buttons) b.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

function signInWithPassword(create) {
  const email = $("sign-in-email");
  const password = $("sign-in-password");
  for (const field of [email, password]) field.removeAttribute("aria-invalid");
  let problem = null;
  if (!email.value.trim()) problem = [email, "Enter your email address."];
  else if (!email.checkValidity()) problem = [email, "That is not an email address."];
  else if (!password.value) problem = [password, "Enter your password."];
  else if (create && password.value.length < 6) problem = [password, "Choose a longer password: at least 6 characters."];
  if (problem) {
    const [field, words] = problem;
    field.setAttribute("aria-invalid", "true");
    $("sign-in-error").textContent = words;
    $("sign-in-error").hidden = false;
    field.focus();
    return;
  }
  const button = create ? $("create-account") : $("sign-in-submit");
  signIn({ method: "password", email: email.value.trim(), password: password.value, create }, button);
}

async function signOut() {
  try {
    await state.backend.signOut();
    // The sign-in section replaces the button: the focus goes to it, now or once it shows.
    if ($("sign-in").hidden) state.focusSignIn = true;
    else $("sign-in-title").focus();
  } catch (err) {
    $("who").textContent = `Could not sign out: ${err.message}`;
  }
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

// -- settings, estimate, today's video time, request -----------------------------------------------

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

// The video's length and the server's estimate of its cost (estimate.js, over prices.json).
function renderEstimate() {
  const request = { ...readRequest(), prompts: state.prompts.length };
  const prices = state.prices;
  let cost;
  if (prices === undefined) cost = "Estimated cost: reading the prices…";
  else if (prices.error) cost = `No cost estimate: the prices could not be loaded (${prices.error}).`;
  else {
    const billed = prices.estimated ? "priced as on Veo, nothing is billed here" : "the bill counts what is generated";
    cost = `Estimated cost: ${formatUsd(estimateUsd(prices, request))} with ${pricedAs(prices)} (an estimate: ${billed}).`;
  }
  $("estimate").textContent =
    `Video length: ${formatSeconds(request.prompts * request.segmentSeconds)} ` +
    `(${request.prompts} × ${request.segmentSeconds} s). ${cost}`;
  renderUsage();
}

async function readPrices() {
  try {
    state.prices = await loadPrices();
  } catch (error) {
    state.prices = { error: error.message };
  }
  renderEstimate();
}

// Seconds as the server's messages write them ("600 s"), with thousands grouped; a no-break space
// keeps the number and its unit on one line.
function secs(n) {
  return `${Number(n).toLocaleString("en-US")}\u00a0s`;
}

// The seconds of video the form asks for (what a job reserves of today's budget).
function neededSeconds() {
  return state.prompts.length * Number($("segmentSeconds").value);
}

// "Today: 16 s used, 584 s left of 600 s", and whether the video in the form fits what is left.
function renderUsage() {
  const line = $("usage");
  const usage = state.usage;
  let text = "";
  let short = false;
  if (!state.backend) text = "";
  else if (!signedIn()) text = "Sign in to see today's video time.";
  else if (usage === undefined) text = "Today: reading your video time…";
  else if (usage === null) text = "Sign in to see today's video time.";
  else if (usage.error) text = `Today's video time could not be read: ${usage.error}`;
  else if (usage.limitSeconds === null && usage.usedSeconds === 0 && state.backend.accounts) {
    // Firebase mode: the day's record is written with the first job; until then the limit is not known here.
    text = "Today: no video time used yet. Your daily limit shows here once you start your first video today.";
  } else if (usage.limitSeconds === null) {
    text = `Today: ${secs(usage.usedSeconds)} used (no daily limit)`;
  } else {
    text = `Today: ${secs(usage.usedSeconds)} used, ${secs(usage.leftSeconds)} left of ${secs(usage.limitSeconds)}`;
    short = neededSeconds() > usage.leftSeconds;
    if (short) text += `. This video needs ${secs(neededSeconds())}: more than is left today`;
  }
  // A refusal for the budget speaks of the video as it was: once the form asks for other seconds, it goes.
  if (state.refused !== null && state.refused !== neededSeconds()) {
    state.refused = null;
    $("request-error").hidden = true;
  }
  if (line.textContent !== text) line.textContent = text; // a live region: say it only when it changes
  line.dataset.short = String(short);
  // The dollars the day's jobs spent, from the same ledger (local jobs: priced as on Veo).
  const spent = signedIn() && usage && !usage.error && typeof usage.spentUsd === "number";
  const nothingBilled = state.prices?.estimated ? " (priced as on Veo, nothing billed)" : "";
  $("spent-today").hidden = !spent;
  $("spent-today").textContent = spent ? `Spent today: ${formatUsd(usage.spentUsd)}${nothingBilled}` : "";
}

async function refreshUsage() {
  if (!state.backend) return;
  const seq = ++state.usageSeq;
  let usage = null;
  if (signedIn()) {
    try {
      usage = await state.backend.usage();
    } catch (error) {
      usage = { error: error.message };
    }
  }
  if (seq !== state.usageSeq) return; // a later read is under way
  state.usage = usage;
  renderUsage();
}

function clearErrors() {
  state.refused = null;
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

// One message beside Generate (an alert: it is announced where the focus stays, on Generate).
function showRequestError(text) {
  clearErrors();
  $("request-error").textContent = text;
  $("request-error").hidden = false;
}

// Why the backend refused to start the job, in words that say what to do (null: no special words).
function refusal(error, request) {
  const d = error.details ?? {};
  const tomorrow = " Video time comes back at midnight UTC.";
  if (error.status === "RESOURCE_EXHAUSTED" && d.limitSeconds !== undefined) {
    const need = secs(d.requestedSeconds);
    const left = d.remainingSeconds;
    const fit = Math.floor(left / request.segmentSeconds);
    const fits = fit > 0 ? ` ${fit} scene${fit === 1 ? "" : "s"} of ${request.segmentSeconds} s would fit.` : "";
    if (d.scope === "project") {
      return (
        `Not enough video time left today on this service: this video needs ${need} and ` +
        `${secs(left)} of the ${secs(d.limitSeconds)} all users share a day are left.${fits}${tomorrow}`
      );
    }
    if (left === 0) {
      return `No video time left today: you have used all ${secs(d.limitSeconds)} of your day, and this video needs ${need}.${tomorrow}`;
    }
    return (
      `Not enough video time left today: this video needs ${need} and you have ${secs(left)} left ` +
      `of ${secs(d.limitSeconds)} a day.${fits} Remove scenes or choose a shorter segment length to fit.${tomorrow}`
    );
  }
  if (error.status === "RESOURCE_EXHAUSTED" && d.limit !== undefined) {
    return `You have ${d.limit} unfinished job${d.limit === 1 ? "" : "s"}, the most at once: wait for one to finish or cancel one, then Generate again.`;
  }
  if (error.status === "PERMISSION_DENIED" || error.status === "UNAUTHENTICATED") {
    return `Not allowed: ${error.message}`;
  }
  return null;
}

async function submit(request) {
  if (!signedIn()) return; // Generate is disabled, with the reason beside it
  const button = $("generate");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  clearErrors();
  try {
    const { jobId, cost } = await state.backend.trigger(request);
    openJob(jobId, "director", { cost });
  } catch (error) {
    const words = error instanceof CallError ? refusal(error, request) : null;
    if (error instanceof CallError && error.status === "INVALID_ARGUMENT") showErrors(error);
    else if (words) showRequestError(words);
    else showErrors({ message: error.message, details: { field: "request" } });
    if (words && error.details?.requestedSeconds !== undefined) state.refused = neededSeconds(); // the budget
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = !signedIn();
    refreshUsage();
  }
}

// -- the open job ------------------------------------------------------------------------------------

// loadForm: put the job's request in the Director's form (a job opened from My jobs or the
// address), not after Generate, where the form already holds what the user typed.
// cost: the trigger's answer's (the server's estimate), shown until the job itself arrives.
function openJob(jobId, view = state.view, { loadForm = false, focus = false, cost = null } = {}) {
  detachJob();
  state.jobId = jobId;
  state.job = null;
  state.loadForm = loadForm;
  state.lastMessage = null;
  state.links = null; // fresh links for every (re)opening
  clearStatusLog();
  state.editor.clear();
  state.versions.clear();
  $("job").hidden = false;
  $("job-error").hidden = true;
  $("result").hidden = true;
  renderCost(cost ? { cost, status: "queued" } : null);
  $("editor-delete").disabled = true; // until the job is here to name
  state.unwatch = state.backend.watch(jobId, onJob, (error) => {
    $("job-error").textContent = `Job updates stopped: ${error.message}`;
    $("job-error").hidden = false;
  });
  showView(view, { focus });
}

// Stop hearing about the open job and let go of its files (nothing may ask for them once deleted).
function detachJob() {
  state.unwatch?.();
  state.unwatch = null;
  for (const video of document.querySelectorAll("video")) clearSource(video);
}

function closeJob() {
  detachJob();
  state.jobId = null;
  state.job = null;
  state.links = null;
  state.lastMessage = null;
  $("job").hidden = true;
  $("result").hidden = true;
  renderCost(null);
  clearStatusLog();
  state.editor.clear();
  state.versions.clear();
  $("editor-job").hidden = true;
  $("editor-empty").hidden = false;
  writeHash();
}

function onJob(job) {
  if (job.jobId !== state.jobId) return; // a late word about a job closed since
  const ended = isFinal(job) && !(state.job && isFinal(state.job));
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
    for (const id of ["status-log", "editor-log"]) {
      const entry = document.createElement("li");
      entry.textContent = `${job.progress}% — ${message}`;
      $(id).append(entry);
    }
  }
  renderJob(job, message);
  renderEditor(job, message);
  renderCost(job);
  loadLinks();
  if (ended) refreshUsage(); // a failed or cancelled job gives back the seconds it did not make
  if (isFinal(job) && state.view === "jobs") refreshJobs();
}

function clearStatusLog() {
  for (const id of ["status-log", "editor-log"]) $(id).replaceChildren();
}

// The Director's progress bar and the Editor's: the same job (the Editor's, its current version).
function renderProgress(bar, job, message) {
  bar.setAttribute("aria-valuenow", String(job.progress));
  bar.setAttribute("aria-valuetext", `${job.progress}%, ${message}`);
  bar.querySelector(".fill").style.width = `${job.progress}%`;
  bar.dataset.status = job.status;
}

function renderJob(job, message) {
  renderProgress($("progress"), job, message);
  $("status").textContent = message;
  $("cancel").hidden = isFinal(job);
  $("retry").hidden = job.status !== "failed" && job.status !== "cancelled";
  const failed = job.status === "failed";
  $("job-error").hidden = !failed;
  $("job-error").textContent = failed ? `Reason: ${job.error}${job.errorStep ? ` (step ${job.errorStep})` : ""}` : "";
}

// What the open job cost, in the Director and the Editor: the server's estimate and what it spent.
function renderCost(job) {
  let text = "";
  if (job?.cost) text = costWords(job.cost, isFinal(job));
  else if (job) text = "No cost was recorded for this job.";
  for (const id of ["job-cost", "editor-cost"]) {
    $(id).textContent = text;
    $(id).hidden = !text;
  }
}

function renderEditor(job, message) {
  $("editor-empty").hidden = true;
  $("editor-job").hidden = false;
  renderProgress($("editor-progress"), job, message);
  $("editor-status").textContent = `${job.progress}% — ${message}`;
  $("editor-delete").disabled = false;
  state.editor.show(job);
  renderMedia();
}

// An edit was accepted: its version runs as a new job does, watched afresh (the local feed ends
// with the version before); the focus goes to its progress.
function onEdited(jobId) {
  openJob(jobId, "editor");
  $("editor-status").focus();
  refreshUsage(); // the new version's seconds are booked
}

// -- playback: links from get_playback_urls only ---------------------------------------------------

// What there is to play changes when a scene is made, the job completes, or retention removes media.
function linkKey(job) {
  const made = job.segments.filter((s) => s.status === "completed").map((s) => s.index);
  return [job.version ?? 1, job.status === "completed", made.join(","), job.sceneMediaRemovedAt ?? "", job.videoRemovedAt ?? ""].join("|");
}

function hasPlayable(job) {
  const video = job.status === "completed" && !job.videoRemovedAt;
  const scenes = !job.sceneMediaRemovedAt && job.segments.some((s) => s.status === "completed");
  return video || scenes;
}

function linksAreStale() {
  const links = state.links;
  return Boolean(links && !links.error && linksStale(links.fetchedAt, state.backend.linkMinutes));
}

// Fetch the open job's links when it is opened, when it has something new to play, and (force)
// when they are about to expire or a player could not load one.
async function loadLinks({ force = false } = {}) {
  const job = state.job;
  if (!job || !hasPlayable(job)) return;
  const key = linkKey(job);
  if (!force && state.links?.key === key) return;
  if (state.linksLoading) {
    state.linksAgain = true; // what the job has now is asked for once this answer is in
    return;
  }
  state.linksLoading = true;
  const jobId = job.jobId;
  let links;
  try {
    const result = await state.backend.playback(jobId);
    const segments = new Map(result.segments.map((s) => [s.index, s.url ?? null]));
    links = { jobId, key, videoUrl: result.videoUrl ?? null, segments, fetchedAt: Date.now(), error: null };
  } catch (error) {
    links = { jobId, key, videoUrl: null, segments: new Map(), fetchedAt: Date.now(), error: error.message };
  }
  state.linksLoading = false;
  if (state.jobId === jobId) {
    state.links = links;
    renderMedia();
  }
  if (state.linksAgain) {
    state.linksAgain = false;
    loadLinks();
  }
}

function when(iso) {
  return new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

// The players and what stands in for them: the Director's result, the Editor's final video and scenes.
function renderMedia() {
  const job = state.job;
  if (!job) return;
  const links = state.links?.jobId === job.jobId ? state.links : null;
  const pending = !links || links.key !== linkKey(job); // a fetch for what the job has now is due
  const completed = job.status === "completed";
  const videoUrl = completed && !job.videoRemovedAt ? (links?.videoUrl ?? null) : null;
  let note = "";
  if (completed && job.videoRemovedAt) {
    note = `The final video was removed on ${when(job.videoRemovedAt)}: finished videos are kept for a limited time.`;
  } else if (completed && !videoUrl) {
    if (pending) note = "Getting a link to play the video…";
    else note = links.error ? `Could not get a link to play the video: ${links.error}` : "There is no video to play.";
  }
  $("result").hidden = !completed;
  $("result-note").textContent = note;
  $("result-note").hidden = !note;
  showPlayer($("final-video"), videoUrl);
  $("download-line").hidden = !videoUrl;
  if (videoUrl) {
    $("download").href = videoUrl;
    $("download").setAttribute("download", `longform-${job.jobId}.mp4`);
  } else {
    $("download").removeAttribute("href");
  }

  state.versions.show(job, {
    url: videoUrl,
    text: completed ? note : isFinal(job) ? `No video: the job ${job.status}.` : "Not ready yet.",
  });

  const removed = job.sceneMediaRemovedAt;
  state.editor.showPreviews((index) => {
    const segment = job.segments[index];
    const made = segment.status === "completed";
    const url = made && !removed ? (links?.segments.get(segment.index) ?? null) : null;
    let text = "";
    if (made && removed) {
      text = `Preview removed on ${when(removed)}: scenes are kept for a limited time after their job ends.`;
    } else if (made && !url) {
      if (pending) text = "Getting a link to play this scene…";
      else text = links?.error ? `Could not get a link to play this scene: ${links.error}` : "No preview.";
    } else if (segment.status === "cancelled") {
      text = "Not made: the job was cancelled first.";
    } else if (segment.status === "failed") {
      text = "No preview: this scene was not made.";
    } else if (!made) {
      text = "No preview yet.";
    }
    return { url, text };
  });
}

// Links expire: a player about to play with stale links, or failing to load one, gets fresh ones.
// `playsCurrent`: whether it plays the open job's current version (an earlier version's player
// refreshes its own link, versions.js).
function watchPlayer(video, playsCurrent = () => true) {
  video.addEventListener("play", () => {
    if (playsCurrent() && linksAreStale()) loadLinks({ force: true });
  });
  video.addEventListener("error", () => {
    const links = state.links;
    if (!playsCurrent() || !video.getAttribute("src") || !links || Date.now() - links.fetchedAt < FRESH_LINK_MS) return;
    loadLinks({ force: true });
  });
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
    refreshUsage(); // the scenes it will not make are given back
  }
}

// Retry: a failed job is resumed in place (only its missing scenes are made and paid for); a
// cancelled one is made again as a new job.
async function retryJob() {
  if (!state.job) return;
  if (state.job.status === "failed") {
    const jobId = state.jobId;
    try {
      await state.backend.resume(jobId);
      openJob(jobId, state.view);
    } catch (error) {
      const words = error instanceof CallError ? refusal(error, state.job.request) : null;
      $("job-error").textContent = `Could not resume: ${words ?? error.message}`;
      $("job-error").hidden = false;
    } finally {
      refreshUsage(); // the seconds it had given back are booked again
    }
    return;
  }
  const { requestId, ...request } = state.job.request;
  submit({ ...request, requestId: crypto.randomUUID() });
}

// -- deleting a job: a confirm step in the page -----------------------------------------------------

function summary(job) {
  const first = job.segments[0]?.prompt ?? job.request?.prompts?.[0] ?? "";
  return first.length > 80 ? `${first.slice(0, 80)}…` : first;
}

// focusAfter: where the focus goes once the job (and the button that opened the dialog) is gone.
function askDelete(listed, opener, focusAfter) {
  const job = state.job?.jobId === listed.jobId ? state.job : listed; // the open job's latest word
  state.deleting = { jobId: job.jobId, opener, focusAfter, done: false };
  const n = job.segments.length;
  $("delete-what").textContent = `“${summary(job)}”: ${job.status}, ${n} scene${n === 1 ? "" : "s"}.`;
  const running = isFinal(job) ? "" : "It is still running: it is cancelled first. ";
  $("delete-warning").textContent = `${running}Its video and scenes are deleted for good. Video time it used today stays used.`;
  $("delete-error").hidden = true;
  setDeleteBusy(false);
  $("delete-dialog").showModal();
  $("delete-keep").focus(); // the safe choice first: Enter right away deletes nothing
}

function setDeleteBusy(busy) {
  const confirm = $("delete-confirm");
  confirm.disabled = busy;
  $("delete-keep").disabled = busy;
  confirm.textContent = busy ? "Deleting…" : "Delete job";
  if (busy) confirm.setAttribute("aria-busy", "true");
  else confirm.removeAttribute("aria-busy");
}

async function confirmDelete() {
  const deleting = state.deleting;
  if (!deleting) return;
  const { jobId } = deleting;
  const open = state.jobId === jobId;
  const view = state.view;
  const what = $("delete-what").textContent;
  setDeleteBusy(true);
  if (open) detachJob(); // its players must not ask for files being deleted
  try {
    await state.backend.deleteJob(jobId);
  } catch (error) {
    setDeleteBusy(false);
    $("delete-error").textContent = `Could not delete it: ${error.message}`;
    $("delete-error").hidden = false;
    $("delete-confirm").focus();
    if (open) openJob(jobId, view); // still there: watch it again
    return;
  }
  deleting.done = true;
  deleting.target = deleting.focusAfter(); // while the job's item is still in the list
  document.querySelector(`#job-list li[data-job-id="${CSS.escape(jobId)}"]`)?.remove();
  $("jobs-empty").hidden = $("job-list").children.length > 0;
  if (open) closeJob();
  $("delete-dialog").close();
  $("announce").textContent = `Deleted the job ${what}`;
  refreshUsage();
}

function onDeleteDialogClosed() {
  const deleting = state.deleting;
  state.deleting = null;
  if (!deleting) return;
  const target = deleting.done ? deleting.target : deleting.opener;
  (target?.isConnected ? target : $(`${state.view}-title`)).focus();
}

// After deleting from My jobs: the next job's first button, else the one before, else the heading.
function focusAfterListItem(item) {
  return () => {
    const neighbour = item.nextElementSibling ?? item.previousElementSibling;
    return neighbour?.querySelector("button") ?? $("jobs-title");
  };
}

// -- My jobs -------------------------------------------------------------------------------------------

async function refreshJobs() {
  const list = $("job-list");
  $("jobs-error").hidden = true;
  if (!signedIn()) {
    list.replaceChildren();
    $("jobs-empty").textContent = "Sign in to see your jobs.";
    $("jobs-empty").hidden = false;
    return;
  }
  let jobs;
  try {
    jobs = await state.backend.listJobs();
  } catch (error) {
    $("jobs-error").textContent = error.message;
    $("jobs-error").hidden = false;
    return;
  }
  $("jobs-empty").textContent = "No jobs yet.";
  $("jobs-empty").hidden = jobs.length > 0;
  list.replaceChildren(
    ...jobs.map((job) => {
      const item = document.createElement("li");
      item.className = "job-item";
      item.dataset.jobId = job.jobId;
      const first = summary(job);
      const created = new Date(job.timings.createdAt).toLocaleString();
      const removed = job.videoRemovedAt ? " · video removed" : job.sceneMediaRemovedAt ? " · scene previews removed" : "";
      const cost = job.cost ? ` · <span class="job-cost"></span>` : "";
      item.innerHTML = `
        <p class="job-summary"><strong></strong></p>
        <p class="job-meta"><span class="badge" data-status="${job.status}">${job.status}</span>
          ${job.progress}% · ${job.segments.length} scene(s) · <time datetime="${job.timings.createdAt}">${created}</time>${cost}${removed}</p>
        <div class="actions">
          <button type="button" data-open="director">Open in Director</button>
          <button type="button" data-open="editor">Open in Editor</button>
          <button type="button" data-delete class="danger">Delete</button>
        </div>`;
      item.querySelector("strong").textContent = first;
      if (job.cost) item.querySelector(".job-cost").textContent = costBrief(job.cost, isFinal(job));
      for (const button of item.querySelectorAll("button")) {
        button.setAttribute("aria-label", `${button.textContent}: ${first.slice(0, 40)} (${job.status})`);
        if (button.hasAttribute("data-delete")) {
          button.addEventListener("click", () => askDelete(job, button, focusAfterListItem(item)));
          continue;
        }
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
  state.editor = createEditor({
    backend: () => state.backend,
    estimated: () => Boolean(state.prices?.estimated),
    explain: (error) => (error instanceof CallError ? refusal(error, state.job?.request ?? {}) : null),
    watchPlayer,
    applied: onEdited,
  });
  state.versions = createVersions({ backend: () => state.backend });
  renderPrompts();
  readPrices();
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

  watchPlayer($("final-video"));
  watchPlayer($("editor-final"), () => state.versions.playsCurrent());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && linksAreStale()) loadLinks({ force: true });
  });
  $("download").addEventListener("click", async (event) => {
    if (!linksAreStale()) return;
    event.preventDefault(); // this link may have expired: follow a fresh one
    await loadLinks({ force: true });
    if ($("download").getAttribute("href") && !linksAreStale()) $("download").click();
  });

  $("editor-delete").addEventListener("click", () => {
    if (state.job) askDelete(state.job, $("editor-delete"), () => $("editor-title"));
  });
  $("delete-confirm").addEventListener("click", confirmDelete);
  $("delete-keep").addEventListener("click", () => $("delete-dialog").close());
  $("delete-dialog").addEventListener("cancel", (event) => {
    if ($("delete-confirm").disabled) event.preventDefault(); // not while the delete is under way
  });
  $("delete-dialog").addEventListener("close", onDeleteDialogClosed);

  $("sign-in-google").addEventListener("click", () => signIn({ method: "google" }, $("sign-in-google")));
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signInWithPassword(false);
  });
  $("create-account").addEventListener("click", () => signInWithPassword(true));
  for (const id of ["sign-in-email", "sign-in-password"]) {
    $(id).addEventListener("input", () => $(id).removeAttribute("aria-invalid"));
  }
  $("sign-out").addEventListener("click", signOut);
  $("go-sign-in").addEventListener("click", () => $("sign-in-title").focus());

  try {
    state.backend = await createBackend(await loadConfig());
  } catch (error) {
    $("who").textContent = `Could not connect: ${error.message}`;
    return;
  }
  document.body.dataset.mode = state.backend.mode;
  renderEstimate();
  const { view, jobId } = readHash();
  state.view = VIEWS.includes(view) ? view : "director";
  state.pendingJobId = jobId;
  let first = true;
  state.backend.onUser((user) => {
    onUser(user, first);
    if (first) document.body.dataset.ready = "true";
    first = false;
  });
}

start();
