// Stand-in for firebase/auth (see README.md): accounts in fakeFirebase.accounts {email: password},
// the signed-in user in fakeFirebase.user; Google sign-in signs in fakeFirebase.googleUser.
const fake = (globalThis.fakeFirebase ??= {});
fake.calls ??= [];
fake.accounts ??= {};
fake.user ??= null;
fake.googleUser ??= { uid: "google-ada", email: "ada@example.com", displayName: "Ada Lovelace", isAnonymous: false };
const listeners = new Set();

function authError(code) {
  return Object.assign(new Error(`Firebase: Error (${code}).`), { code });
}

function become(user) {
  fake.user = user;
  for (const listener of listeners) setTimeout(() => listener(user), 0);
  return { user };
}

export class GoogleAuthProvider {
  constructor() {
    this.providerId = "google.com";
    this.parameters = {};
  }

  setCustomParameters(parameters) {
    this.parameters = parameters;
    return this;
  }
}

export function getAuth(app) {
  return {
    app,
    get currentUser() {
      return fake.user;
    },
  };
}

export function connectAuthEmulator(auth, url) {
  fake.calls.push(["connectAuthEmulator", url]);
}

export function onAuthStateChanged(auth, next) {
  listeners.add(next);
  setTimeout(() => next(fake.user), 0); // as the SDK: once the saved state is read
  return () => listeners.delete(next);
}

export async function signInWithPopup(auth, provider) {
  fake.calls.push(["signInWithPopup", provider.providerId, provider.parameters]);
  if (fake.popupClosed) throw authError("auth/popup-closed-by-user");
  return become(fake.googleUser);
}

export async function signInWithEmailAndPassword(auth, email, password) {
  fake.calls.push(["signInWithEmailAndPassword", email]);
  if (fake.accounts[email] !== password) throw authError("auth/invalid-credential");
  return become({ uid: `password-${email}`, email, displayName: null, isAnonymous: false });
}

export async function createUserWithEmailAndPassword(auth, email, password) {
  fake.calls.push(["createUserWithEmailAndPassword", email]);
  if (email in fake.accounts) throw authError("auth/email-already-in-use");
  if (password.length < 6) throw authError("auth/weak-password");
  fake.accounts[email] = password;
  return become({ uid: `password-${email}`, email, displayName: null, isAnonymous: false });
}

export async function signOut() {
  fake.calls.push(["signOut"]);
  become(null);
}
