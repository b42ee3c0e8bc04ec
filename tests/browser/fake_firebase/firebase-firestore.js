// Stand-in for firebase/firestore (see README.md): documents in fakeFirebase.docs {path: data};
// a query on a collection answers every document under it.
const fake = (globalThis.fakeFirebase ??= {});
fake.calls ??= [];
fake.docs ??= {};

export function getFirestore(app) {
  return { app };
}

export function connectFirestoreEmulator(db, host, port) {
  fake.calls.push(["connectFirestoreEmulator", `${host}:${port}`]);
}

export function doc(db, ...path) {
  return { path: path.join("/") };
}

export function collection(db, ...path) {
  return { path: path.join("/") };
}

export const where = (...args) => ({ where: args });
export const orderBy = (...args) => ({ orderBy: args });
export const limit = (n) => ({ limit: n });

export function query(ref, ...constraints) {
  return { ...ref, constraints };
}

function snapshot(path) {
  const data = fake.docs[path];
  return { id: path.split("/").pop(), exists: () => data !== undefined, data: () => structuredClone(data) };
}

export async function getDoc(ref) {
  fake.calls.push(["getDoc", ref.path]);
  return snapshot(ref.path);
}

export async function getDocs(q) {
  fake.calls.push(["getDocs", q.path, q.constraints]);
  const paths = Object.keys(fake.docs).filter((p) => p.startsWith(`${q.path}/`) && !p.slice(q.path.length + 1).includes("/"));
  return { docs: paths.map(snapshot) };
}

export function onSnapshot(ref, next) {
  fake.calls.push(["onSnapshot", ref.path]);
  setTimeout(() => next(snapshot(ref.path)), 0);
  return () => {};
}
