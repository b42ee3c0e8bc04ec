// What the page says about a job: the same words as Job.status_message() in functions/longform/job.py.

export const FINAL = new Set(["completed", "failed", "cancelled"]);

export function isFinal(job) {
  return FINAL.has(job.status);
}

export function statusMessage(job) {
  switch (job.status) {
    case "queued":
      return "Queued...";
    case "generating": {
      // An edit makes only some of the scenes (the others are reused): those are counted.
      const making = job.segments.filter((s) => !s.reused);
      const done = making.filter((s) => s.status === "completed").length;
      if (making.length === 0) return "Imaginating Scene... every scene reused";
      return `Imaginating Scene... scene ${Math.min(done + 1, making.length)} of ${making.length}`;
    }
    case "stitching":
      return "Stitching Masterpiece...";
    case "completed":
      return "Completed";
    case "cancelled":
      return "Cancelled";
    default:
      return `Failed: ${job.error ?? "unknown reason"}`;
  }
}
