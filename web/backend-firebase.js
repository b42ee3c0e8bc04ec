// Firebase mode: the page as deployed on Firebase Hosting (or under the emulators).
// The SDK is vendored under vendor/firebase by `make web`; index.html's import map resolves it.
// The interface is documented in backend.js.
import { initializeApp } from "firebase/app";
import { initializeAppCheck, ReCaptchaEnterpriseProvider } from "firebase/app-check";
import {
  GoogleAuthProvider,
  connectAuthEmulator,
  createUserWithEmailAndPassword,
  getAuth,
  onAuthStateChanged,
  signInWithEmailAndPassword,
  signInWithPopup,
  signOut,
} from "firebase/auth";
import {
  collection,
  connectFirestoreEmulator,
  doc,
  getDoc,
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
import { linkMinutes } from "./links.js";

const RECENT_JOBS = 20;

// config (web/config.json, written by `make web` from the settings and firebase.json):
// {mode: "firebase", region, firebase?: {apiKey, projectId, …}, emulators?, playbackUrlMinutes?,
//  appCheckSiteKey?, appCheckDebug?}
// Without `firebase` options the page uses Hosting's reserved /__/firebase/init.json (served by
// deployed Hosting and by its emulator). `emulators` is used only when the page itself is served
// from this machine, so the same file works deployed and under `firebase emulators:start`.
export async function createFirebaseBackend(config) {
  const options = config.firebase ?? (await (await fetch("/__/firebase/init.json")).json());
  const app = initializeApp(options);
  const onThisMachine = ["127.0.0.1", "localhost"].includes(location.hostname);
  // App Check, which every callable enforces (ENFORCE_APP_CHECK): reCAPTCHA Enterprise with the
  // site key `make web` put in config.json (APP_CHECK_SITE_KEY). Served from this machine with
  // appCheckDebug, the debug provider instead: it prints a token to register in the console.
  if (config.appCheckSiteKey) {
    if (onThisMachine && config.appCheckDebug) self.FIREBASE_APPCHECK_DEBUG_TOKEN = true;
    initializeAppCheck(app, {
      provider: new ReCaptchaEnterpriseProvider(config.appCheckSiteKey),
      isTokenAutoRefreshEnabled: true,
    });
  }
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, config.region);
  if (config.emulators && onThisMachine) {
    const { auth: authHost, firestore, functions: functionsHost } = config.emulators;
    connectAuthEmulator(auth, `http://${authHost}`, { disableWarnings: true });
    connectFirestoreEmulator(db, ...hostPort(firestore));
    connectFunctionsEmulator(functions, ...hostPort(functionsHost));
  }

  async function call(name, data) {
    try {
      return (await httpsCallable(functions, name)(data)).data;
    } catch (err) {
      // FunctionsError.code is "functions/invalid-argument"; the page uses the wire status.
      const status = String(err.code ?? "internal").replace("functions/", "").replaceAll("-", "_").toUpperCase();
      throw new CallError(status, err.message, err.details);
    }
  }

  // Nobody signed in (or an anonymous account, which may not start jobs): nothing of theirs to read.
  function uid() {
    return auth.currentUser?.uid ?? null;
  }

  return {
    mode: "firebase",
    accounts: true,
    linkMinutes: linkMinutes(config),

    onUser(onChange) {
      return onAuthStateChanged(auth, (user) => onChange(user ? describe(user) : null));
    },

    async signIn({ method, email, password, create = false }) {
      try {
        let credential;
        if (method === "google") {
          const provider = new GoogleAuthProvider();
          provider.setCustomParameters({ prompt: "select_account" });
          credential = await signInWithPopup(auth, provider);
        } else if (create) {
          credential = await createUserWithEmailAndPassword(auth, email, password);
        } else {
          credential = await signInWithEmailAndPassword(auth, email, password);
        }
        return describe(credential.user);
      } catch (err) {
        throw new Error(authMessage(err));
      }
    },

    signOut: () => signOut(auth),

    trigger: (request) => call("trigger_long_form_video_job", request),
    cancel: (jobId) => call("cancel_long_form_video_job", { jobId }),
    resume: (jobId) => call("resume_long_form_video_job", { jobId }),
    deleteJob: (jobId) => call("delete_long_form_video_job", { jobId }),
    edit: (data) => call("edit_long_form_video_job", data),
    playback: (jobId, version) => call("get_playback_urls", version ? { jobId, version } : { jobId }),

    // usage/{uid}/days/{YYYY-MM-DD} (UTC): written by the functions with the user's first job of
    // the day, so before that today is unused and the limit is not known here.
    async usage() {
      const user = uid();
      if (!user) return null;
      const day = new Date().toISOString().slice(0, 10);
      const snapshot = await getDoc(doc(db, "usage", user, "days", day));
      const data = snapshot.exists() ? snapshot.data() : {};
      const usedSeconds = data.seconds ?? 0;
      const limitSeconds = data.limitSeconds ?? null;
      const leftSeconds = limitSeconds === null ? null : Math.max(0, limitSeconds - usedSeconds);
      return { day, usedSeconds, limitSeconds, leftSeconds, spentUsd: data.spentUsd ?? 0 };
    },

    watch(jobId, onJob, onError) {
      return onSnapshot(
        doc(db, "videoJobs", jobId),
        (snapshot) => (snapshot.exists() ? onJob(snapshot.data()) : onError(new Error("the job no longer exists"))),
        onError,
      );
    },

    async listJobs() {
      const user = uid();
      if (!user) throw new Error("sign in to see your jobs");
      // The rules let a user read only their own jobs, so the query must say so (index in firestore.indexes.json).
      const q = query(
        collection(db, "videoJobs"),
        where("userId", "==", user),
        orderBy("timings.createdAt", "desc"),
        orderBy("jobId"),
        limit(RECENT_JOBS),
      );
      return (await getDocs(q)).docs.map((d) => d.data());
    },
  };
}

function hostPort(hostAndPort) {
  const [host, port] = hostAndPort.split(":");
  return [host, Number(port)];
}

function describe(user) {
  const name = user.displayName && user.email ? `${user.displayName} (${user.email})` : user.email ?? user.displayName;
  return { uid: user.uid, name: name ?? "an account without a name or email", anonymous: user.isAnonymous };
}

// Firebase Auth's error codes, in words a person can act on.
const AUTH_MESSAGES = {
  "auth/invalid-credential": "Wrong email or password.",
  "auth/wrong-password": "Wrong email or password.",
  "auth/user-not-found": "Wrong email or password.",
  "auth/invalid-email": "That is not an email address.",
  "auth/missing-email": "Enter your email address.",
  "auth/missing-password": "Enter your password.",
  "auth/weak-password": "Choose a longer password: at least 6 characters.",
  "auth/email-already-in-use": "There is already an account with that email: sign in instead.",
  "auth/user-disabled": "This account is disabled.",
  "auth/too-many-requests": "Too many tries: wait a little, then try again.",
  "auth/popup-closed-by-user": "The sign-in window was closed before signing in.",
  "auth/cancelled-popup-request": "The sign-in window was closed before signing in.",
  "auth/popup-blocked": "The browser blocked the sign-in window: allow pop-ups for this site and try again.",
  "auth/operation-not-allowed": "This way of signing in is not enabled for this project.",
  "auth/network-request-failed": "Could not reach the sign-in service: check the connection and try again.",
  "auth/unauthorized-domain": "Sign-in is not allowed from this address: add it to Firebase Auth's authorized domains.",
  "auth/auth-domain-config-required": "Google sign-in needs authDomain in this site's Firebase settings.",
};

function authMessage(err) {
  return AUTH_MESSAGES[err?.code] ?? `Could not sign in: ${err?.message ?? err}`;
}
