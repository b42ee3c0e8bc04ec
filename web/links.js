// Playback links (get_playback_urls) live PLAYBACK_URL_MINUTES: signed URLs in the cloud. The page
// asks for fresh ones a margin before they expire, and whenever a player fails to load one.

export const FRESH_LINK_MS = 10_000; // a link this fresh that fails to play has not expired: not asked again
export const DEFAULT_LINK_MINUTES = 60; // PLAYBACK_URL_MINUTES's default (functions/longform/config.py)

// The lifetime the config gives (neither server sends one yet: then the default).
export function linkMinutes(config) {
  const minutes = Number(config.playbackUrlMinutes);
  return Number.isFinite(minutes) && minutes > 0 ? minutes : DEFAULT_LINK_MINUTES;
}

// Links fetched at `fetchedAt` (ms) are stale once less than a margin of their life is left:
// a tenth of it, at most five minutes (a player may need the link for a while after it starts).
export function linksStale(fetchedAt, minutes, now = Date.now()) {
  const lifetime = minutes * 60_000;
  const margin = Math.min(5 * 60_000, lifetime / 10);
  return now - fetchedAt > lifetime - margin;
}
