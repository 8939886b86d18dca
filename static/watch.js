// videoshare watch page: plays the video (a file from its src; an HLS
// ladder with hls.js, or with the browser's own HLS where it has one), a
// quality menu for a ladder, and a seek bar under the video that shows
// the storyboard tile and the time under the pointer (the native
// controls' bar cannot say where the pointer is).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('player');
  const errorBox = $('player-error');

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  /** `m:ss`, or `h:mm:ss` from an hour. */
  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds || 0));
    const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
    const two = (n) => String(n).padStart(2, '0');
    return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
  }

  // ---- playing ----

  /** Hands a ladder's master playlist to whatever can play it. */
  function play() {
    const playlist = video.dataset.hls;
    if (!playlist) {
      video.dataset.engine = 'file';
    } else if (window.Hls && window.Hls.isSupported()) {
      playWithHlsJs(playlist);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.dataset.engine = 'native';
      video.src = playlist;
    } else {
      video.dataset.engine = 'none';
      showError('This browser cannot play this video: it has neither Media Source Extensions nor HLS.');
    }
  }

  function playWithHlsJs(playlist) {
    const Hls = window.Hls;
    const hls = new Hls({
      // A ladder still encoding is an EVENT playlist, which hls.js treats
      // as live: start at its beginning, not at the live edge, and keep
      // following it as segments arrive.
      startPosition: 0,
      maxBufferLength: 30,
      maxMaxBufferLength: 60,
      backBufferLength: 60,
      // fMP4 segments need no transmuxing, and a worker would be a blob:
      // script, which the page's Content-Security-Policy refuses.
      enableWorker: false,
    });
    video.dataset.engine = 'hls.js';
    let recovered = false;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      // A decode error is often a bad buffer: rebuild it once.
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        hls.recoverMediaError();
        return;
      }
      const what = data.type === Hls.ErrorTypes.NETWORK_ERROR
        ? 'could not be loaded'
        : 'cannot be played';
      showError(`The video ${what} (${data.details}).`);
      hls.destroy();
    });
    qualityMenu(hls);
    hls.loadSource(playlist);
    hls.attachMedia(video);
  }

  /** "Auto" plus one choice per rung, tallest first; "Auto (480p)" names
   *  the rung hls.js chose. */
  function qualityMenu(hls) {
    const Hls = window.Hls;
    const box = $('quality-box');
    const menu = $('quality');
    const auto = menu.options[0];
    let playing = null;
    const showAuto = () => {
      auto.textContent = hls.autoLevelEnabled && playing ? `Auto (${playing.height}p)` : 'Auto';
    };
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      const rungs = hls.levels
        .map((level, index) => ({ level, index }))
        .filter(({ level }) => level.height > 0)
        .sort((a, b) => b.level.height - a.level.height);
      for (const { level, index } of rungs) {
        menu.add(new Option(`${level.height}p`, String(index)));
      }
      box.hidden = rungs.length < 2;
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
      playing = hls.levels[data.level] || null;
      showAuto();
    });
    menu.addEventListener('change', () => {
      // -1 is Auto; a rung switches now (its buffer is replaced).
      hls.currentLevel = Number(menu.value);
      showAuto();
    });
  }

  // ---- the storyboard ----

  /** `hh:mm:ss.ttt` or `mm:ss.ttt` in seconds. */
  function seconds(stamp) {
    return stamp.split(':').reduce((total, part) => total * 60 + Number(part), 0);
  }

  /** The tiles of a WebVTT storyboard: cues whose text is
   *  `picture.jpg#xywh=x,y,w,h`, relative to the file. Pictures elsewhere
   *  than this site are ignored. */
  function parseStoryboard(text, base) {
    const tiles = [];
    const lines = text.split(/\r?\n/);
    lines.forEach((line, i) => {
      const times = /^\s*([\d:.]+)\s+-->\s+([\d:.]+)/.exec(line);
      const target = times && /^\s*(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)\s*$/.exec(lines[i + 1] || '');
      if (!target) return;
      const url = new URL(target[1], base);
      if (url.origin !== window.location.origin) return;
      const [x, y, w, h] = target.slice(2).map(Number);
      tiles.push({ start: seconds(times[1]), end: seconds(times[2]), url: url.href, x, y, w, h });
    });
    return tiles;
  }

  async function loadStoryboard(address) {
    try {
      const response = await fetch(address, { credentials: 'same-origin' });
      if (!response.ok) return [];
      const base = new URL(address, window.location.href);
      return parseStoryboard(await response.text(), base);
    } catch {
      // No previews: the bar still shows the time.
      return [];
    }
  }

  // ---- the seek bar ----

  function seekBar() {
    const box = $('seek');
    const bar = $('seek-bar');
    const tip = $('seek-tip');
    const tile = $('seek-tile');
    const tipTime = $('seek-time');
    let tiles = [];
    let pointerOver = false;
    box.hidden = false;

    // A ladder still encoding has no duration yet: as far as it is seekable.
    const length = () => {
      if (Number.isFinite(video.duration)) return video.duration;
      const seekable = video.seekable;
      return seekable.length ? seekable.end(seekable.length - 1) : 0;
    };
    const percent = (t, total) => (total > 0 ? `${Math.min(100, (t / total) * 100)}%` : '0%');

    function paint() {
      const total = length();
      const now = video.currentTime;
      bar.max = String(total);
      bar.value = String(now);
      bar.setAttribute('aria-valuetext', `${clock(now)} of ${clock(total)}`);
      let buffered = now;
      for (let i = 0; i < video.buffered.length; i += 1) {
        if (video.buffered.start(i) <= now + 0.5) buffered = Math.max(buffered, video.buffered.end(i));
      }
      bar.style.setProperty('--played', percent(now, total));
      bar.style.setProperty('--buffered', percent(buffered, total));
    }
    for (const event of ['timeupdate', 'durationchange', 'progress', 'loadedmetadata', 'seeking', 'emptied']) {
      video.addEventListener(event, paint);
    }

    /** Shows the tile and time of `t`, `px` from the bar's left edge. */
    function showTip(t, px) {
      const cue = tiles.find((c) => t >= c.start && t < c.end) || tiles[tiles.length - 1];
      tile.hidden = !cue;
      if (cue) {
        tile.style.width = `${cue.w}px`;
        tile.style.height = `${cue.h}px`;
        tile.style.backgroundImage = `url("${cue.url}")`;
        tile.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      }
      tipTime.textContent = clock(t);
      tip.hidden = false;
      // Centred on the pointer, kept inside the bar's width.
      const room = Math.max(0, bar.clientWidth - tip.offsetWidth);
      tip.style.left = `${Math.min(room, Math.max(0, px - tip.offsetWidth / 2))}px`;
    }
    const hideTip = () => {
      tip.hidden = true;
    };
    /** The tip for where the thumb is (keyboard, drag). */
    function tipAtValue() {
      const total = length();
      const t = Number(bar.value);
      showTip(t, total > 0 ? (t / total) * bar.clientWidth : 0);
    }

    bar.addEventListener('pointermove', (event) => {
      pointerOver = true;
      const rect = bar.getBoundingClientRect();
      const fraction = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
      showTip(fraction * length(), fraction * rect.width);
    });
    bar.addEventListener('pointerleave', () => {
      pointerOver = false;
      if (document.activeElement !== bar) hideTip();
    });
    bar.addEventListener('blur', () => {
      if (!pointerOver) hideTip();
    });
    // Placed in pixels for the old width.
    window.addEventListener('resize', hideTip);
    bar.addEventListener('input', () => {
      video.currentTime = Number(bar.value);
      if (!pointerOver) tipAtValue();
    });
    // Arrows step 5 s (a range with step="any" would step a hundredth).
    bar.addEventListener('keydown', (event) => {
      const total = length();
      const to = {
        ArrowLeft: video.currentTime - 5,
        ArrowDown: video.currentTime - 5,
        ArrowRight: video.currentTime + 5,
        ArrowUp: video.currentTime + 5,
        PageDown: video.currentTime - total / 10,
        PageUp: video.currentTime + total / 10,
        Home: 0,
        End: total,
      }[event.key];
      if (to === undefined || !(total > 0)) return;
      event.preventDefault();
      video.currentTime = Math.min(total, Math.max(0, to));
      // At once: the `seeking` event that would paint it comes a task later.
      paint();
      tipAtValue();
    });

    if (video.dataset.storyboard) {
      loadStoryboard(video.dataset.storyboard).then((found) => {
        tiles = found;
        // Fetched once now, not on the first hover.
        if (tiles.length) new Image().src = tiles[0].url;
      });
    }
    paint();
  }

  seekBar();
  play();
})();
