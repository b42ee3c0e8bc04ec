// The error every backend throws when a callable fails. A module of its own so that backend.js,
// which loads the backends, and the backends, which throw it, do not import each other.

export class CallError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status; // "INVALID_ARGUMENT", "NOT_FOUND", … as in Firebase's HttpsError
    this.details = details ?? null;
  }
}
