// The <video> players: what they play, set without restarting a video that plays the same file.
// The page plays only links from get_playback_urls (app.js, versions.js).

export function showPlayer(video, url) {
  video.hidden = !url;
  if (url) setSource(video, url);
  else clearSource(video);
}

// Setting the same src again would restart a playing video. A new link for the same file (the
// old one expired) keeps the place and whether it was playing.
function setSource(video, url) {
  const current = video.getAttribute("src");
  if (current === url && !video.error) return;
  const at = video.currentTime;
  const playing = Boolean(current) && !video.paused && !video.ended;
  if (current === url) video.load(); // the same link failed once: try it again
  else video.setAttribute("src", url);
  if (current && (at > 0 || playing)) {
    video.addEventListener(
      "loadedmetadata",
      () => {
        video.currentTime = at;
        if (playing) video.play().catch(() => {});
      },
      { once: true },
    );
  }
}

export function clearSource(video) {
  if (!video.hasAttribute("src")) return;
  video.pause();
  video.removeAttribute("src");
  video.load(); // drops the old file: no more requests for it
}
