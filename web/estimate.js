// The video length and what the video model would charge for it, shown before Generate.
//
// List prices in USD per second of generated video on Vertex AI, for the cloud default model
// (VEO_MODEL in functions/longform/cloud/params.py). They change: check them at
// https://cloud.google.com/vertex-ai/generative-ai/pricing before relying on the estimate.
// Resolution does not change the price; the stitch (a few cents a minute at most) is left out.
export const MODEL = "veo-3.1-fast-generate-001";
export const PRICE_PER_SECOND = { withAudio: 0.15, withoutAudio: 0.1 };

export function estimate({ prompts, segmentSeconds, generateAudio }) {
  const seconds = prompts * segmentSeconds;
  const price = generateAudio ? PRICE_PER_SECOND.withAudio : PRICE_PER_SECOND.withoutAudio;
  return { seconds, cost: seconds * price };
}

export function formatSeconds(total) {
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  if (minutes === 0) return `${seconds} s`;
  return `${minutes} min ${String(seconds).padStart(2, "0")} s`;
}

export function formatCost(usd) {
  return `$${usd.toFixed(2)}`;
}
