// The data layer: one interface, two backends, picked by the config the server provides.
//
//   backend.mode                 "local" | "firebase"
//   backend.who                  a line saying who is signed in
//   backend.trigger(request)     → {jobId, status}      (callable trigger_long_form_video_job)
//   backend.cancel(jobId)        → {jobId, status}      (callable cancel_long_form_video_job)
//   backend.watch(jobId, onJob, onError) → unsubscribe  (onSnapshot on videoJobs/{jobId})
//   backend.listJobs()           → [job], newest first
//
// Jobs are the videoJobs documents (camelCase); `videoUrl` and `segments[i].url` are set when
// there is something a <video> can play. Callable failures throw CallError (call-error.js).

// `longform serve` answers /__/longform/config.json; Firebase Hosting serves web/config.json.
export async function loadConfig() {
  for (const url of ["/__/longform/config.json", "config.json"]) {
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (response.ok) return await response.json();
    } catch {
      // not served here: try the next
    }
  }
  return { mode: "firebase" };
}

export async function createBackend(config) {
  if (config.mode === "local") {
    const { createLocalBackend } = await import("./backend-local.js");
    return createLocalBackend(config);
  }
  const { createFirebaseBackend } = await import("./backend-firebase.js");
  return createFirebaseBackend(config);
}
