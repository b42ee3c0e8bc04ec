// The Editor's final video and its version switcher. The current version plays the open job's
// links (app.js); an earlier one plays the link get_playback_urls gives for that version.
import { costBrief } from "./estimate.js";
import { isFinal } from "./jobs.js";
import { FRESH_LINK_MS, linksStale } from "./links.js";
import { showPlayer } from "./players.js";

const $ = (id) => document.getElementById(id);

// deps: {backend()}
export function createVersions(deps) {
  const video = $("editor-final");
  const select = $("version");
  const state = {
    job: null,
    basis: null, // "jobId version": the list of versions was made for it
    current: { url: null, text: "Not ready yet." }, // app.js: the current version's link and words
    chosen: null, // the number of the earlier version playing, or null: the current one
    links: null, // the chosen version's {number, videoUrl, fetchedAt, error}
    loading: false,
  };

  function when(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function summary(changes) {
    const text = changes?.length ? changes.join("; ") : "as first made";
    return text.length > 70 ? `${text.slice(0, 70)}…` : text;
  }

  // Newest first: the current version, then the earlier ones.
  function renderOptions() {
    const job = state.job;
    const number = job.version ?? 1;
    const earlier = [...(job.versions ?? [])].reverse();
    const options = [
      [`Version ${number} (current): ${summary(job.changes)}`, ""],
      ...earlier.map((v) => [`Version ${v.number}: ${summary(v.changes)}`, String(v.number)]),
    ];
    const same = [...select.options].map((o) => [o.text, o.value]);
    // Rebuilt only when they change: the list may be open, or read by a screen reader, as the job runs.
    if (JSON.stringify(same) !== JSON.stringify(options)) {
      select.replaceChildren(...options.map(([text, value]) => new Option(text, value)));
    }
    select.value = state.chosen === null ? "" : String(state.chosen);
    $("versions").hidden = earlier.length === 0;
  }

  function chosenVersion() {
    return state.job?.versions?.find((v) => v.number === state.chosen) ?? null;
  }

  // "Version 1: 3 scenes, completed, made Nov 3, 2026, 10:04. Changed: … $1.20 spent of …"
  function renderAbout() {
    const job = state.job;
    const v = chosenVersion();
    const number = v ? v.number : (job.version ?? 1);
    const scenes = v ? v.scenes.length : job.segments.length;
    const status = v ? v.status : job.status;
    const made = when(v ? v.createdAt : job.timings?.createdAt);
    const changes = v ? v.changes : job.changes;
    const cost = v ? v.cost : job.cost;
    let text = `Version ${number}: ${scenes} scene${scenes === 1 ? "" : "s"}, ${status}${made ? `, made ${made}` : ""}.`;
    if (changes?.length) text += ` Changed: ${changes.join("; ")}.`;
    if (cost) text += ` ${costBrief(cost, v ? true : isFinal(job))}.`; // an earlier version has ended
    $("version-about").textContent = text;
  }

  function render() {
    if (!state.job) return;
    renderAbout();
    if (state.chosen === null) {
      play(state.current.url, state.current.text);
      return;
    }
    const links = state.links?.number === state.chosen ? state.links : null;
    let text = "";
    if (!links) text = `Getting a link to play version ${state.chosen}…`;
    else if (links.error) text = `Could not get a link to play version ${state.chosen}: ${links.error}`;
    else if (!links.videoUrl) text = `Version ${state.chosen} has no video to play (not made, or removed).`;
    play(links?.videoUrl ?? null, text);
  }

  function play(url, text) {
    showPlayer(video, url);
    $("editor-final-none").hidden = Boolean(url);
    $("editor-final-none").textContent = url ? "" : text;
  }

  async function loadLinks() {
    const number = state.chosen;
    const job = state.job;
    if (number === null || !job || state.loading) return;
    state.loading = true;
    let links;
    try {
      const answer = await deps.backend().playback(job.jobId, number);
      links = { number, videoUrl: answer.videoUrl ?? null, fetchedAt: Date.now(), error: null };
    } catch (error) {
      links = { number, videoUrl: null, fetchedAt: Date.now(), error: error.message };
    }
    state.loading = false;
    if (state.job?.jobId !== job.jobId) return;
    if (state.chosen === number) {
      state.links = links;
      render();
    } else if (state.chosen !== null) {
      loadLinks(); // another version was chosen meanwhile
    }
  }

  select.addEventListener("change", () => {
    state.chosen = select.value ? Number(select.value) : null;
    if (state.links?.number !== state.chosen) state.links = null;
    render();
    loadLinks();
  });
  // An earlier version's link expires as the current one's do: a fresh one before playing, or
  // when the player cannot load it.
  video.addEventListener("play", () => {
    const links = state.links;
    if (state.chosen !== null && links && !links.error && linksStale(links.fetchedAt, deps.backend().linkMinutes)) {
      loadLinks();
    }
  });
  video.addEventListener("error", () => {
    const links = state.links;
    if (state.chosen === null || !links || Date.now() - links.fetchedAt < FRESH_LINK_MS) return;
    loadLinks();
  });

  return {
    // Whether the player plays the current version (app.js refreshes its links), not an earlier one.
    playsCurrent() {
      return state.chosen === null;
    },
    // Every word of the open job, with what plays for its current version ({url, text}).
    show(job, current) {
      state.job = job;
      state.current = current;
      const basis = `${job.jobId} ${job.version ?? 1}`;
      if (basis !== state.basis) {
        state.basis = basis; // a new job or a new version: it plays its current version
        state.chosen = null;
        state.links = null;
      }
      renderOptions();
      render();
    },

    clear() {
      state.job = null;
      state.basis = null;
      state.chosen = null;
      state.links = null;
      $("versions").hidden = true;
      play(null, "Not ready yet.");
    },
  };
}
