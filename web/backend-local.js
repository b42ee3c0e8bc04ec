// Local mode: `longform serve`. The callable protocol over fetch, job updates as server-sent events.
// One local user, always signed in. The interface is documented in backend.js.
import { CallError } from "./call-error.js";
import { isFinal } from "./jobs.js";
import { linkMinutes } from "./links.js";

export function createLocalBackend(config) {
  const base = `/${config.project}/${config.region}`;
  const user = { uid: config.user ?? "local", name: "the local user", anonymous: false };

  async function call(name, data) {
    let response;
    try {
      response = await fetch(`${base}/${name}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ data }),
      });
    } catch (err) {
      throw new CallError("UNAVAILABLE", `the local server did not answer: ${err.message}`);
    }
    const body = await response.json().catch(() => ({}));
    if (body.error || !response.ok) {
      const error = body.error ?? {};
      throw new CallError(error.status ?? "INTERNAL", error.message ?? `HTTP ${response.status}`, error.details);
    }
    return body.result;
  }

  async function get(path, what) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error(`could not read ${what}: HTTP ${response.status}`);
    return response.json();
  }

  return {
    mode: "local",
    accounts: false,
    linkMinutes: linkMinutes(config),

    onUser(onChange) {
      queueMicrotask(() => onChange(user));
      return () => {};
    },
    signIn: async () => user,
    signOut: async () => {},

    trigger: (request) => call("trigger_long_form_video_job", request),
    cancel: (jobId) => call("cancel_long_form_video_job", { jobId }),
    resume: (jobId) => call("resume_long_form_video_job", { jobId }),
    deleteJob: (jobId) => call("delete_long_form_video_job", { jobId }),
    edit: (data) => call("edit_long_form_video_job", data),
    playback: (jobId, version) => call("get_playback_urls", version ? { jobId, version } : { jobId }),
    usage: () => get("/__/longform/usage", "today's usage"),

    watch(jobId, onJob, onError) {
      const source = new EventSource(`/__/longform/jobs/${encodeURIComponent(jobId)}/events`);
      source.addEventListener("job", (event) => {
        const job = JSON.parse(event.data);
        onJob(job);
        if (isFinal(job)) source.close(); // the server ends the stream; don't let it reconnect
      });
      source.onerror = () => {
        // EventSource reconnects by itself (and gets a fresh snapshot) unless it gave up.
        if (source.readyState === EventSource.CLOSED) onError(new Error("lost the connection to the job"));
      };
      return () => source.close();
    },

    async listJobs() {
      return (await get("/__/longform/jobs", "your jobs")).jobs;
    },
  };
}
