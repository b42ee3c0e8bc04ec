// Stand-in for firebase/app (see README.md).
const fake = (globalThis.fakeFirebase ??= {});
fake.calls ??= [];

export function initializeApp(options) {
  fake.calls.push(["initializeApp", options.projectId]);
  return { options };
}
