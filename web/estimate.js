// The video length and what a job costs: the page's side of functions/longform/prices.py.
//
// No price is kept here. The page reads prices.json, the prices the server estimates with:
// `longform serve` answers it from its settings, and `make web` writes web/prices.json for Hosting
// from the same table and the functions' settings (devtools/web_config.py). estimateUsd repeats
// Pricing.estimate's arithmetic step by step, so it gives the server's figure to the millionth
// (tests/unit/test_web_assets.py checks it against Python over a grid of requests).

// {currency, pricedAs, stitch, estimated, pricesAsOf, table: {veo, transcoder, function},
//  frameSizes, estimatedStitchSecondsPerMinute}: local_server.published_prices.
export async function loadPrices(url = "prices.json") {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const prices = await response.json();
  if (!prices.table?.veo?.[prices.pricedAs]) throw new Error(`it has no price for ${prices.pricedAs ?? "the model"}`);
  return prices;
}

// Pricing.estimate: every scene generated once, and the stitch. `prompts` is the number of scenes.
export function estimateUsd(prices, { prompts, segmentSeconds, aspectRatio, resolution, generateAudio }) {
  const { table } = prices;
  const veo = table.veo[prices.pricedAs];
  const sceneUsd = usd(segmentSeconds * (generateAudio ? veo.withAudio : veo.withoutAudio));
  const videoSeconds = prompts * segmentSeconds;
  let stitchUsd;
  if (prices.stitch === "transcoder") {
    // Per minute of output, by the resolution class of the frame's shorter side.
    const side = Math.min(...prices.frameSizes[`${aspectRatio} ${resolution}`]);
    const { sd, hd, uhd } = table.transcoder;
    stitchUsd = usd((videoSeconds / 60) * (side < 720 ? sd : side <= 1080 ? hd : uhd));
  } else {
    // The in-function stitch: its time, estimated from the video's length.
    const f = table.function;
    const seconds = (videoSeconds / 60) * prices.estimatedStitchSecondsPerMinute;
    stitchUsd = usd(seconds * (f.vcpus * f.vcpuSecond + f.gib * f.gibSecond));
  }
  return usd(prompts * sceneUsd + stitchUsd);
}

// prices.py's usd(): dollars to a millionth.
export function usd(amount) {
  return round(amount + 0, 6);
}

// Python's round(amount, digits): the nearest decimal, a tie to the even digit. toFixed is exact
// but rounds a tie away from zero; an amount lies exactly halfway only when it is an odd multiple
// of 2^-(digits + 1) (0.125 for cents), and then its two neighbours are computed exactly.
export function round(amount, digits) {
  const halves = amount * 2 ** (digits + 1);
  if (Number.isInteger(halves) && halves % 2 !== 0) {
    const below = Math.floor(amount * 10 ** digits);
    return (below % 2 === 0 ? below : below + 1) / 10 ** digits;
  }
  return Number(amount.toFixed(digits));
}

// "$1,234.56", as the CLI writes dollars; a fraction of a cent (a stitch) keeps four digits.
export function formatUsd(amount) {
  const digits = amount >= 0.01 || amount === 0 ? 2 : 4;
  const text = round(amount, digits).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return `$${text}`;
}

const STITCHES = { transcoder: "the Transcoder stitch", ffmpeg: "the in-function stitch" };

// "veo-3.1-fast-generate-001 and the Transcoder stitch, at the prices as of 2026-11-29"
export function pricedAs({ pricedAs: model, stitch, pricesAsOf }) {
  return `${model} and ${STITCHES[stitch] ?? `the ${stitch} stitch`}, at the prices as of ${pricesAsOf}`;
}

// A job's cost (its `cost`, prices.py's Cost): what it spent so far or in the end, against the
// server's estimate, and on which prices. Local jobs are priced as if on Veo: nothing is billed.
export function costWords(cost, final) {
  const spent =
    `${formatUsd(cost.totalUsd)} (scenes ${formatUsd(cost.scenesUsd)}, stitch ${formatUsd(cost.stitchUsd)})` +
    ` of ${formatUsd(cost.estimateUsd)} estimated`;
  const billed = cost.estimated ? "Priced as on Veo, nothing billed:" : "Billed on";
  return `${final ? "Spent" : "Spent so far"}: ${spent}. ${billed} ${pricedAs(cost)}.`;
}

// The same, short, for My jobs.
export function costBrief(cost, final) {
  const spent = `${formatUsd(cost.totalUsd)} spent${final ? "" : " so far"} of ${formatUsd(cost.estimateUsd)} estimated`;
  return cost.estimated ? `${spent} (priced as on Veo, nothing billed)` : spent;
}

export function formatSeconds(total) {
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  if (minutes === 0) return `${seconds} s`;
  return `${minutes} min ${String(seconds).padStart(2, "0")} s`;
}
