// Stand-in for firebase/app-check (see README.md): records how App Check was started.
const fake = (globalThis.fakeFirebase ??= {});
fake.calls ??= [];

export class ReCaptchaEnterpriseProvider {
  constructor(siteKey) {
    this.siteKey = siteKey;
  }
}

export function initializeAppCheck(app, options) {
  const debug = self.FIREBASE_APPCHECK_DEBUG_TOKEN ?? null;
  fake.calls.push(["initializeAppCheck", options.provider.siteKey, options.isTokenAutoRefreshEnabled, debug]);
  return { app };
}
