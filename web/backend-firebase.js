// Firebase mode: the page as deployed on Firebase Hosting (or under the emulators).
// The SDK is vendored under vendor/firebase by `make web`; index.html's import map resolves it.
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, onAuthStateChanged, signInAnonymously } from "firebase/auth";
import {
  collection,
  connectFirestoreEmulator,
  doc,
  getDocs,
  getFirestore,
  limit,
  onSnapshot,
  orderBy,
  query,
  where,
} from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";
import { CallError } from "./call-error.js";

const RECENT_JOBS = 20;

// config (web/config.json, written by `make web` from the settings and firebase.json):
// {mode: "firebase", region, firebase?: {apiKey, projectId, …}, emulators?}
// Without `firebase` options the page uses Hosting's reserved /__/firebase/init.json (served by
// deployed Hosting and by its emulator). `emulators` is used only when the page itself is served
// from this machine, so the same file works deployed and under `firebase emulators:start`.
export async function createFirebaseBackend(config) {
  const options = config.firebase ?? (await (await fetch("/__/firebase/init.json")).json());
  const app = initializeApp(options);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, config.region);
  if (config.emulators && ["127.0.0.1", "localhost"].includes(location.hostname)) {
    const { auth: authHost, firestore, functions: functionsHost } = config.emulators;
    connectAuthEmulator(auth, `http://${authHost}`, { disableWarnings: true });
    connectFirestoreEmulator(db, ...hostPort(firestore));
    connectFunctionsEmulator(functions, ...hostPort(functionsHost));
  }
  const user = await signedIn(auth);

  async function call(name, data) {
    try {
      return (await httpsCallable(functions, name)(data)).data;
    } catch (err) {
      // FunctionsError.code is "functions/invalid-argument"; the page uses the wire status.
      const status = String(err.code ?? "internal").replace("functions/", "").replaceAll("-", "_").toUpperCase();
      throw new CallError(status, err.message, err.details);
    }
  }

  return {
    mode: "firebase",
    who: user.isAnonymous ? "Signed in anonymously" : `Signed in as ${user.email ?? user.uid}`,
    trigger: (request) => call("trigger_long_form_video_job", request),
    cancel: (jobId) => call("cancel_long_form_video_job", { jobId }),

    watch(jobId, onJob, onError) {
      return onSnapshot(
        doc(db, "videoJobs", jobId),
        (snapshot) => snapshot.exists() && onJob(playable(snapshot.data())),
        onError,
      );
    },

    async listJobs() {
      // The rules let a user read only their own jobs, so the query must say so (index in firestore.indexes.json).
      const q = query(
        collection(db, "videoJobs"),
        where("userId", "==", user.uid),
        orderBy("timings.createdAt", "desc"),
        orderBy("jobId"),
        limit(RECENT_JOBS),
      );
      return (await getDocs(q)).docs.map((d) => playable(d.data()));
    },
  };
}

function hostPort(hostAndPort) {
  const [host, port] = hostAndPort.split(":");
  return [host, Number(port)];
}

function signedIn(auth) {
  return new Promise((resolve, reject) => {
    const stop = onAuthStateChanged(auth, (user) => {
      stop();
      if (user) resolve(user);
      else signInAnonymously(auth).then((credential) => resolve(credential.user), reject);
    }, reject);
  });
}

// The final video has a signed https URL (videoUrl) when the functions could sign one; segments
// live at gs:// URIs, which a browser cannot play, so the Editor shows no preview for them.
function playable(job) {
  return {
    ...job,
    segments: job.segments.map((s) => ({ ...s, url: s.uri?.startsWith("https://") ? s.uri : null })),
  };
}
