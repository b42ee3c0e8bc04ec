// The data layer: one interface, two backends, picked by the config the server provides.
// backend-local.js and backend-firebase.js return objects with exactly these members (a browser
// test compares them), so the page has one code path for both:
//
//   backend.mode                 "local" | "firebase"
//   backend.accounts             false: one local user, always signed in (no sign-in to offer);
//                                true: Firebase Auth accounts (Google, or email and password)
//   backend.linkMinutes          how long a playback link lives (PLAYBACK_URL_MINUTES, 60 unless
//                                the config says); the page asks for fresh links before then
//   backend.onUser(onChange)     → unsubscribe; onChange(user | null) once the sign-in state is
//                                known, then on every change. user = {uid, name, anonymous}
//                                (anonymous accounts may not start jobs: the page asks them to sign in)
//   backend.signIn({method: "google"})                                 → user (a popup; the Auth
//                                emulator shows its own sign-in page)
//   backend.signIn({method: "password", email, password, create})     → user (create: a new account)
//                                Local mode resolves to the local user. Failures throw an Error
//                                whose message can be shown as is.
//   backend.signOut()            → nothing (local mode: does nothing)
//   backend.trigger(request)     → {jobId, status, cost} (callable trigger_long_form_video_job; cost:
//                                the job's estimate, prices.py's Cost in camelCase)
//   backend.cancel(jobId)        → {jobId, status}      (callable cancel_long_form_video_job)
//   backend.resume(jobId)        → {jobId, status}      (callable resume_long_form_video_job: a failed
//                                job continues in place, making only its missing scenes)
//   backend.deleteJob(jobId)     → {jobId, deleted}     (callable delete_long_form_video_job:
//                                cancels it if it runs, deletes its files and its document)
//   backend.edit({jobId, requestId, scenes, continuity, dryRun})      (callable
//                                edit_long_form_video_job: a new version of a finished job)
//                                dryRun → {jobId, version, plans: {keep, regenerate}};
//                                else → {jobId, status, version, plan, cost}. A plan says which
//                                scenes of the new list are generated, reused, start with a cut,
//                                and its seconds, costUsd and changes (editor.js)
//   backend.playback(jobId, version?) → {jobId, videoUrl, segments: [{index, url}]} (callable
//                                get_playback_urls: fresh short-lived links, null where nothing can
//                                be played; of an earlier version when given one). The ONLY way the
//                                page plays anything: the bucket is private, and a job's own
//                                videoUrl / segment uri are not used.
//   backend.usage()              → {day, usedSeconds, limitSeconds, leftSeconds, spentUsd} video
//                                seconds today (UTC day) and the dollars the day's jobs spent (the
//                                ledger's spentUsd); limitSeconds and leftSeconds are null when not
//                                known (Firebase mode before the user's first job of the day);
//                                null when nobody is signed in
//   backend.watch(jobId, onJob, onError) → unsubscribe  (onSnapshot on videoJobs/{jobId})
//   backend.listJobs()           → [job], newest first
//
// Jobs are the videoJobs documents (camelCase), with their `cost` (estimate and spend) and
// sceneMediaRemovedAt / videoRemovedAt when retention removed the scenes' media or the final video.
// The prices the page estimates with are not the backend's: both modes read prices.json (estimate.js). Callable failures throw CallError
// (call-error.js) with the wire status ("RESOURCE_EXHAUSTED", …) and details.

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
