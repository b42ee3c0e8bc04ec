// The Editor's scene cards: the open job's current version as an ordered list to edit in place
// (a prompt, Regenerate, Insert after, Delete, Up and Down or a drag), what the pending edit costs
// (a dry run of edit_long_form_video_job, for both continuity choices when the scenes are
// chained) and Apply, which makes the job's next version. app.js owns the job and its links.
import { CallError } from "./call-error.js";
import { formatSeconds, formatUsd } from "./estimate.js";
import { isFinal } from "./jobs.js";
import { showPlayer } from "./players.js";

const $ = (id) => document.getElementById(id);
const DRY_RUN_DELAY_MS = 350; // typing in a prompt asks for the cost once the typing pauses

// deps: {
//   backend(),                 the backend (backend.js), once connected
//   estimated(),               true when nothing is billed (local jobs, priced as on Veo)
//   explain(error),            words for a refusal (the budget, …) or null: app.js's refusal
//   watchPlayer(video),        fresh links when a preview's have expired (app.js)
//   applied(jobId, answer),    the edit was accepted: app.js watches the new version
// }
export function createEditor(deps) {
  const state = {
    job: null,
    basis: null, // what the draft was made from: "jobId version editable"
    draft: [], // the new version's scenes: [{key, from (index in the current version) | null, prompt, regenerate}]
    nextKey: 0,
    requestId: null, // one per pending edit: Apply again after a lost answer makes no second version
    plans: null, // the dry run's {keep, regenerate} for the draft as it is
    planError: null,
    problemOnScene: false, // the dry run's problem is shown on a card (else under the cost)
    planSeq: 0,
    timer: null,
    applying: false,
    previewOf: null, // app.js: (index of a current scene) → {url, text}
    dragged: null, // the key of the card being dragged
  };

  const list = $("segments");

  // -- the draft: the new version's scenes ---------------------------------------------------------

  function editable() {
    return Boolean(state.job && isFinal(state.job));
  }

  function entry(from, prompt) {
    return { key: state.nextKey++, from, prompt, regenerate: false };
  }

  // The current version as it is: each scene kept, unchanged.
  function resetDraft() {
    state.draft = state.job.segments.map((segment, i) => entry(i, segment.prompt));
    draftChanged();
  }

  function original(e) {
    return e.from === null ? null : state.job.segments[e.from];
  }

  function promptChanged(e) {
    return e.from !== null && e.prompt.trim() !== original(e).prompt;
  }

  // The callable's `scenes`: what each scene of the new version is made from.
  function scenesOfDraft() {
    return state.draft.map((e) => {
      if (e.from === null) return { prompt: e.prompt };
      const scene = { from: e.from };
      if (promptChanged(e)) scene.prompt = e.prompt;
      if (e.regenerate) scene.regenerate = true;
      return scene;
    });
  }

  function pending() {
    if (!editable()) return false;
    const scenes = scenesOfDraft();
    return scenes.length !== state.job.segments.length || scenes.some((s, i) => s.from !== i || Object.keys(s).length > 1);
  }

  function continuity() {
    return document.querySelector('input[name="continuity"]:checked')?.value ?? "keep";
  }

  function chained() {
    return Boolean(state.job?.request?.chain);
  }

  // Every change of the draft: the old cost no longer holds; a new one is asked for shortly.
  function draftChanged() {
    state.requestId = null;
    state.plans = null;
    state.planError = null;
    state.planSeq++;
    clearTimeout(state.timer);
    if (pending()) state.timer = setTimeout(dryRun, DRY_RUN_DELAY_MS);
    renderPlan();
  }

  function change(action, key) {
    const d = state.draft;
    const i = d.findIndex((e) => e.key === key);
    if (i < 0) return;
    let focus = null;
    if (action === "up" && i > 0) {
      [d[i - 1], d[i]] = [d[i], d[i - 1]];
      focus = [key, i - 1 > 0 ? "up" : "down"];
    } else if (action === "down" && i < d.length - 1) {
      [d[i], d[i + 1]] = [d[i + 1], d[i]];
      focus = [key, i + 1 < d.length - 1 ? "down" : "up"];
    } else if (action === "delete" && d.length > 1) {
      d.splice(i, 1);
      focus = [d[Math.min(i, d.length - 1)].key, "prompt"];
    } else if (action === "insert") {
      const added = entry(null, "");
      d.splice(i + 1, 0, added);
      focus = [added.key, "prompt"];
    } else if (action === "regenerate" && d[i].from !== null) {
      d[i].regenerate = !d[i].regenerate;
      focus = [key, "regenerate"];
    } else {
      return;
    }
    renderCards(focus);
    draftChanged();
  }

  // A card dropped on another takes its place; the others move along.
  function moveTo(key, targetKey) {
    const d = state.draft;
    const from = d.findIndex((e) => e.key === key);
    const to = d.findIndex((e) => e.key === targetKey);
    if (from < 0 || to < 0 || from === to) return;
    const [moved] = d.splice(from, 1);
    d.splice(to, 0, moved);
    renderCards([key, "prompt"]);
    draftChanged();
  }

  // -- the cards --------------------------------------------------------------------------------------

  function cardId(key, part) {
    return `scene-${key}-${part}`;
  }

  function renderCards(focus = null) {
    const locked = !editable();
    const n = state.draft.length;
    list.replaceChildren(
      ...state.draft.map((e, i) => {
        const p = i + 1;
        const id = (part) => cardId(e.key, part);
        const item = document.createElement("li");
        item.className = "segment scene-card";
        item.dataset.key = String(e.key);
        item.innerHTML = `
          <div class="scene-head">
            <h3>Scene ${p}</h3>
            <span class="drag-handle" title="Drag to move this scene" aria-hidden="true"
              ${locked ? "" : 'draggable="true"'}>⠿</span>
          </div>
          <p id="${id("change")}" class="scene-change"></p>
          <label for="${id("prompt")}">Prompt<span class="visually-hidden"> of scene ${p}</span></label>
          <textarea id="${id("prompt")}" class="segment-prompt" rows="3"
            aria-describedby="${id("prompt-error")} ${id("change")}" ${locked ? "readonly" : ""}></textarea>
          <p id="${id("prompt-error")}" class="field-error" hidden></p>
          <p class="segment-status"></p>
          <video controls preload="metadata" aria-label="Scene ${p} preview" hidden></video>
          <p class="segment-none">No preview yet.</p>
          <div class="scene-actions">
            <button type="button" id="${id("regenerate")}" data-action="regenerate" aria-pressed="${e.regenerate}"
              aria-label="Regenerate scene ${p}" ${locked || e.from === null ? "disabled" : ""}>Regenerate</button>
            <button type="button" id="${id("insert")}" data-action="insert"
              aria-label="Insert a scene after scene ${p}" ${locked ? "disabled" : ""}>Insert after</button>
            <button type="button" id="${id("delete")}" data-action="delete"
              aria-label="Delete scene ${p}" ${locked || n === 1 ? "disabled" : ""}>Delete</button>
            <button type="button" id="${id("up")}" data-action="up"
              aria-label="Move scene ${p} up" ${locked || i === 0 ? "disabled" : ""}>↑ Up</button>
            <button type="button" id="${id("down")}" data-action="down"
              aria-label="Move scene ${p} down" ${locked || i === n - 1 ? "disabled" : ""}>↓ Down</button>
          </div>`;
        const text = item.querySelector("textarea");
        text.value = e.prompt;
        text.addEventListener("input", () => {
          e.prompt = text.value;
          clearFieldError(e.key);
          renderChange(item, e, i);
          draftChanged();
        });
        item.querySelector(".scene-actions").addEventListener("click", (event) => {
          const action = event.target.closest("button")?.dataset.action;
          if (action) change(action, e.key);
        });
        listenForDrag(item, e.key);
        deps.watchPlayer(item.querySelector("video"));
        return item;
      }),
    );
    renderStatuses();
    renderPreviews();
    if (focus) {
      const target = $(cardId(...focus));
      if (target && !target.disabled) target.focus();
      else $(cardId(focus[0], "prompt"))?.focus();
    }
  }

  function listenForDrag(item, key) {
    const handle = item.querySelector(".drag-handle");
    handle.addEventListener("dragstart", (event) => {
      state.dragged = key;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", String(key));
      event.dataTransfer.setDragImage(item, 16, 16);
      item.classList.add("dragging");
    });
    handle.addEventListener("dragend", () => {
      state.dragged = null;
      item.classList.remove("dragging");
      for (const card of list.children) card.classList.remove("drop-here");
    });
    item.addEventListener("dragover", (event) => {
      if (state.dragged === null || state.dragged === key) return;
      event.preventDefault(); // a drop is allowed here
      event.dataTransfer.dropEffect = "move";
      item.classList.add("drop-here");
    });
    item.addEventListener("dragleave", () => item.classList.remove("drop-here"));
    item.addEventListener("drop", (event) => {
      event.preventDefault();
      const dragged = state.dragged;
      state.dragged = null;
      if (dragged !== null) moveTo(dragged, key);
    });
  }

  // What the card will be in the new version: new, moved, a new prompt, a new take; and, once the
  // dry run answers, whether it is made or reused under the chosen continuity.
  function renderChange(item, e, i) {
    const words = [];
    if (e.from === null) words.push("New scene");
    else {
      if (e.from !== i) words.push(`Was scene ${e.from + 1}`);
      if (promptChanged(e)) words.push("New prompt");
      if (e.regenerate) words.push("Made again with a new seed");
    }
    const plan = pending() ? state.plans?.[continuity()] : null;
    if (plan) {
      if (plan.generate.includes(i)) words.push(e.from === null || words.length ? "Made when you apply" : "Made again for continuity");
      else if (words.length || plan.cuts.includes(i)) words.push("Reused: not made again"); // said where it is news
      if (plan.cuts.includes(i)) words.push("Starts with a visible cut");
    }
    const line = item.querySelector(".scene-change");
    line.textContent = words.join(" · ");
    line.hidden = !words.length;
    item.dataset.plan = plan ? (plan.generate.includes(i) ? "generate" : "reuse") : "";
    item.dataset.edited = String(e.from === null || e.from !== i || promptChanged(e) || e.regenerate);
  }

  function renderStatuses() {
    const job = state.job;
    state.draft.forEach((e, i) => {
      const item = list.children[i];
      if (!item) return;
      const segment = original(e);
      item.dataset.status = segment?.status ?? "new";
      let text = "Status: new, made when the edit is applied";
      if (segment) {
        const error = segment.error ? `: ${segment.error}` : "";
        const reused = segment.reused && job.version > 1 ? ", reused from an earlier version" : "";
        text = `Status: ${segment.status}${reused}${error}`;
      }
      item.querySelector(".segment-status").textContent = text;
      renderChange(item, e, i);
    });
  }

  function renderPreviews() {
    state.draft.forEach((e, i) => {
      const item = list.children[i];
      if (!item) return;
      const preview =
        e.from !== null && state.previewOf
          ? state.previewOf(e.from)
          : { url: null, text: e.from === null ? "A new scene: no preview until it is made." : "No preview yet." };
      showPlayer(item.querySelector("video"), preview.url);
      const none = item.querySelector(".segment-none");
      none.hidden = Boolean(preview.url);
      none.textContent = preview.text;
    });
  }

  // -- the cost of the pending edit ------------------------------------------------------------------

  async function dryRun() {
    const seq = state.planSeq;
    const job = state.job;
    let plans = null;
    let error = null;
    try {
      const answer = await deps.backend().edit({ jobId: job.jobId, scenes: scenesOfDraft(), continuity: continuity(), dryRun: true });
      plans = answer.plans;
    } catch (err) {
      error = err;
    }
    if (seq !== state.planSeq || state.job?.jobId !== job.jobId) return; // the draft changed meanwhile
    state.plans = plans;
    state.planError = error;
    if (error) showError(error, { focus: false });
    else clearErrors();
    renderStatuses();
    renderPlan();
  }

  function scenes(k) {
    return `${k} scene${k === 1 ? "" : "s"}`;
  }

  function planWords(plan) {
    const made = plan.generate.length;
    const what = made ? `makes ${scenes(made)} (${formatSeconds(plan.seconds)} of video)` : "makes no scene";
    const reused = plan.reuse.length ? ` and reuses ${plan.reuse.length}` : "";
    const cuts = plan.cuts.length ? `, with ${plan.cuts.length === 1 ? "a visible cut" : `${plan.cuts.length} visible cuts`}` : "";
    return `${what}${reused}${cuts}`;
  }

  function renderPlan() {
    const job = state.job;
    const open = editable();
    $("edit-form").hidden = !job;
    if (!job) return;
    const isPending = pending();
    $("edit-note").hidden = open;
    $("edit-note").textContent = open ? "" : "The scenes can be edited once this version has finished.";
    $("continuity").hidden = !open || !chained();
    const plans = state.plans;
    for (const choice of ["keep", "regenerate"]) {
      const cost = $(`continuity-${choice}-cost`);
      cost.textContent = plans ? ` — ${formatUsd(plans[choice].costUsd)}: ${planWords(plans[choice])}` : "";
    }
    const billed = deps.estimated() ? " (an estimate: priced as on Veo, nothing is billed here)" : "";
    let words = "";
    if (!open) words = "";
    else if (!isPending) words = "No changes yet: edit a prompt, or regenerate, insert, delete or move a scene.";
    else if (state.planError) words = `No cost for this edit until its problem is fixed (shown ${state.problemOnScene ? "on the scene" : "below"}).`;
    else if (!plans) words = "Working out what this edit costs…";
    else {
      const plan = plans[continuity()];
      words = `Cost of this edit: ${formatUsd(plan.costUsd)}. It ${planWords(plan)}${billed}.`;
    }
    const line = $("edit-cost");
    if (line.textContent !== words) line.textContent = words; // a live region: said when it changes
    line.hidden = !words;
    const changes = plans && isPending ? plans[continuity()].changes : [];
    $("edit-changes").replaceChildren(
      ...changes.map((text) => {
        const item = document.createElement("li");
        item.textContent = text;
        return item;
      }),
    );
    $("edit-changes").hidden = !changes.length;
    $("apply-edit").disabled = !isPending || state.applying;
    $("discard-edit").disabled = !isPending || state.applying;
    $("apply-edit").hidden = $("discard-edit").hidden = !open;
  }

  // -- errors beside the cards, as the Director shows them beside its scenes -------------------------------

  function clearFieldError(key) {
    const error = $(cardId(key, "prompt-error"));
    if (error) error.hidden = true;
    $(cardId(key, "prompt"))?.removeAttribute("aria-invalid");
  }

  function clearErrors() {
    for (const e of state.draft) clearFieldError(e.key);
    $("edit-error").hidden = true;
    $("edit-error").textContent = "";
  }

  // INVALID_ARGUMENT names the field (`scenes[1].prompt`): a scene's problem shows on its card.
  function showError(error, { focus }) {
    clearErrors();
    const general = [];
    let first = null;
    if (error instanceof CallError && error.status === "INVALID_ARGUMENT") {
      const problems = error.details?.problems ?? [{ field: error.details?.field, rule: error.message }];
      for (const { field, rule } of problems) {
        const scene = /^scenes\[(\d+)\](?:\.(\w+))?$/.exec(field ?? "");
        const e = scene ? state.draft[Number(scene[1])] : null;
        if (e && (!scene[2] || scene[2] === "prompt")) {
          const shown = $(cardId(e.key, "prompt-error"));
          shown.textContent = rule;
          shown.hidden = false;
          $(cardId(e.key, "prompt")).setAttribute("aria-invalid", "true");
          first ??= $(cardId(e.key, "prompt"));
        } else {
          const where = e ? `Scene ${Number(scene[1]) + 1}` : (field ?? "edit");
          general.push(`${where}${scene?.[2] && e ? ` (${scene[2]})` : ""}: ${rule}`);
        }
      }
    } else {
      general.push(`Could not edit: ${deps.explain(error) ?? error.message}`);
    }
    $("edit-error").textContent = general.join(" ");
    $("edit-error").hidden = !general.length;
    state.problemOnScene = Boolean(first);
    if (focus) (first ?? $("apply-edit")).focus();
  }

  // -- Apply -----------------------------------------------------------------------------------------

  async function apply() {
    if (!pending() || state.applying) return;
    const job = state.job;
    state.requestId ??= crypto.randomUUID();
    const button = $("apply-edit");
    state.applying = true;
    button.setAttribute("aria-busy", "true");
    renderPlan();
    clearErrors();
    const data = { jobId: job.jobId, requestId: state.requestId, scenes: scenesOfDraft(), continuity: continuity(), dryRun: false };
    try {
      const answer = await deps.backend().edit(data);
      deps.applied(job.jobId, answer);
    } catch (error) {
      showError(error, { focus: true });
    } finally {
      state.applying = false;
      button.removeAttribute("aria-busy");
      renderPlan();
    }
  }

  function discard() {
    resetDraft();
    renderCards();
    clearErrors();
    $("scenes-title").focus(); // the Discard button is disabled: nothing is pending
  }

  $("edit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  $("discard-edit").addEventListener("click", discard);
  for (const radio of document.querySelectorAll('input[name="continuity"]')) {
    radio.addEventListener("change", () => {
      state.requestId = null; // another edit
      renderStatuses();
      renderPlan();
    });
  }

  return {
    // Every word of the open job. The draft starts again from a new job, a new version, or a
    // version that has just finished; otherwise what the user is editing stays.
    show(job) {
      state.job = job;
      const basis = `${job.jobId} ${job.version ?? 1} ${isFinal(job)} ${job.segments.length}`;
      if (basis !== state.basis) {
        state.basis = basis;
        clearErrors();
        resetDraft();
        renderCards();
      } else {
        renderStatuses();
        renderPlan();
      }
    },

    // previewOf(index of a current scene) → {url, text}: app.js's links and words.
    showPreviews(previewOf) {
      state.previewOf = previewOf;
      renderPreviews();
    },

    clear() {
      clearTimeout(state.timer);
      state.planSeq++;
      state.job = null;
      state.basis = null;
      state.draft = [];
      state.plans = null;
      state.previewOf = null;
      list.replaceChildren();
      clearErrors();
      renderPlan();
    },
  };
}
