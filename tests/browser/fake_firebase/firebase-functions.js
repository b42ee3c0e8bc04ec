// Stand-in for firebase/functions (see README.md): fakeFirebase.callables {name: {data} or
// {error: {code, message, details}}} answers each callable, as a FunctionsError on failure.
const fake = (globalThis.fakeFirebase ??= {});
fake.calls ??= [];
fake.callables ??= {};

export function getFunctions(app, region) {
  return { app, region };
}

export function connectFunctionsEmulator(functions, host, port) {
  fake.calls.push(["connectFunctionsEmulator", `${host}:${port}`]);
}

export function httpsCallable(functions, name) {
  return async (data) => {
    fake.calls.push(["call", name, data, fake.user?.uid ?? null]);
    const answer = fake.callables[name] ?? { error: { code: "functions/not-found", message: `no ${name} here` } };
    if (answer.error) throw Object.assign(new Error(answer.error.message), answer.error);
    return { data: answer.data };
  };
}
