// videoshare page: resumable uploads (several at once, drag and drop, speed
// and time left), this browser's encoding queue kept live over one
// WebSocket (progress, speed, ETA, place in the queue, controls) and the
// recently encoded videos. No polling, no reload.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $('upload-form');
  const input = $('file-input');
  const dropZone = $('drop-zone');
  const errorBox = $('upload-error');
  const uploadsList = $('uploads');
  const jobsList = $('jobs');
  const videosList = $('videos');
  const maxUpload = Number(form.dataset.maxUpload) || Infinity;
  const UPLOADS_AT_ONCE = 2;

  let socket = null;
  let retryDelay = 500;

  // ---- small helpers ----

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = '';
  }

  function setBar(bar, label, percent, text) {
    bar.value = percent;
    bar.setAttribute('aria-valuenow', String(percent));
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    bar.setAttribute('aria-valuetext', text);
    label.textContent = text;
  }

  function bytes(n) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function duration(secs) {
    secs = Math.max(0, Math.round(secs));
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = secs % 60;
    if (h > 0) return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
    return `${m}:${String(s).padStart(2, '0')}`;
  }

  // ---- uploads ----

  // Speed over the last few seconds, so the estimate follows the network.
  function rateMeter() {
    const samples = [];
    return (sent) => {
      const now = performance.now();
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      const [t0, b0] = samples[0];
      const secs = (now - t0) / 1000;
      return secs > 0.2 ? (sent - b0) / secs : 0;
    };
  }

  const waiting = [];
  let active = 0;

  function addUploadRow(file) {
    const row = $('upload-template').content.firstElementChild.cloneNode(true);
    row.querySelector('.upload-name').textContent = file.name;
    setBar(row.querySelector('progress'), row.querySelector('.label'), 0, 'Waiting to upload');
    uploadsList.append(row);
    return row;
  }

  function queueFiles(files) {
    clearError();
    for (const file of files) {
      if (file.size === 0) {
        showError(`${file.name} is empty.`);
        continue;
      }
      if (file.size > maxUpload) {
        showError(`${file.name} is larger than the limit of ${bytes(maxUpload)}.`);
        continue;
      }
      waiting.push({ file, row: addUploadRow(file) });
    }
    startUploads();
  }

  function startUploads() {
    while (active < UPLOADS_AT_ONCE && waiting.length > 0) {
      const next = waiting.shift();
      active += 1;
      sendFile(next.file, next.row).finally(() => {
        active -= 1;
        startUploads();
      });
    }
  }

  async function sendFile(file, row) {
    const bar = row.querySelector('progress');
    const label = row.querySelector('.label');
    const cancel = row.querySelector('.cancel');
    const meter = rateMeter();
    const preset = $('preset-select');
    const handle = window.videoshareTus.upload(file, {
      metadata: preset ? { preset: preset.value } : {},
      onProgress: (sent, total) => {
        const percent = total ? Math.floor((sent * 100) / total) : 0;
        const speed = meter(sent);
        const left = speed > 0 ? ` · ${duration((total - sent) / speed)} left` : '';
        const rate = speed > 0 ? ` · ${bytes(speed)}/s` : '';
        setBar(bar, label, percent, `Uploading .. ${percent}% (${bytes(sent)} of ${bytes(total)})${rate}${left}`);
      },
      onRetry: (attempt, delay) => {
        label.textContent = `Connection lost; resuming in ${Math.ceil(delay / 1000)} s (attempt ${attempt})…`;
      },
    });
    cancel.addEventListener('click', () => {
      handle.abort();
      row.remove();
    }, { once: true });
    try {
      const guid = await handle.promise;
      setBar(bar, label, 100, 'Upload complete: encoding is queued');
      cancel.hidden = true;
      // The queue shows the job from here on.
      setTimeout(() => row.remove(), 4000);
      send({ type: 'watch', guid });
    } catch (error) {
      if (error.message === 'aborted') return;
      // A failed upload's bar empties and turns red (style.css): it does
      // not stay full and blue as if it had worked.
      row.classList.add('failed');
      setBar(bar, label, 0, `Upload failed: ${error.message}`);
      cancel.textContent = 'Dismiss';
      cancel.addEventListener('click', () => row.remove(), { once: true });
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.files.length) {
      showError('Choose a video file first.');
      return;
    }
    queueFiles([...input.files]);
    form.reset();
  });

  for (const type of ['dragenter', 'dragover']) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add('dragging');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    dropZone.addEventListener(type, () => dropZone.classList.remove('dragging'));
  }
  dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
    if (files.length) queueFiles(files);
  });

  // ---- the queue ----

  function jobRow(guid) {
    let row = [...jobsList.children].find((li) => li.dataset.guid === guid);
    if (!row) {
      row = $('job-template').content.firstElementChild.cloneNode(true);
      row.dataset.guid = guid;
      jobsList.prepend(row);
    }
    return row;
  }

  function ordinal(n) {
    const suffixes = ['th', 'st', 'nd', 'rd'];
    const v = n % 100;
    return n + (suffixes[(v - 20) % 10] || suffixes[v] || suffixes[0]);
  }

  function facts(job) {
    const parts = [];
    if (job.queue_position) parts.push(job.queue_position === 1 ? 'next in the queue' : `${ordinal(job.queue_position)} in the queue`);
    if (job.fps) parts.push(`${job.fps.toFixed(0)} fps`);
    if (job.speed) parts.push(`${job.speed.toFixed(1)}× realtime`);
    if (job.eta_secs !== undefined) parts.push(`about ${duration(job.eta_secs)} left`);
    return parts.join(' · ');
  }

  function showJob(job) {
    const row = jobRow(job.guid);
    row.querySelector('.job-name').textContent = job.file;
    row.querySelector('.job-preset').textContent = job.preset;
    row.dataset.status = job.status;
    setBar(row.querySelector('progress'), row.querySelector('.label'), job.progress, job.label);
    row.querySelector('.job-facts').textContent = facts(job);
    for (const button of row.querySelectorAll('[data-action]')) {
      button.hidden = !job.actions.includes(button.dataset.action);
      button.disabled = false;
    }
    const links = row.querySelector('.job-links');
    const watchLink = (name, text) => {
      const a = document.createElement('a');
      a.href = `/watch/${encodeURIComponent(name)}`;
      a.textContent = text;
      return a;
    };
    // A ladder playable while it still encodes: its link before the end.
    const watchNow = job.watch && !job.done ? [watchLink(job.watch, 'Watch now — still encoding')] : [];
    watchNow.forEach((a) => a.classList.add('watch-now'));
    links.replaceChildren(...watchNow, ...job.outputs.map((name) => watchLink(name, `Watch ${name}`)));
    $('queue-empty').hidden = jobsList.children.length > 0;
  }

  function showQueue(jobs) {
    const keep = new Set(jobs.map((j) => j.guid));
    [...jobsList.children].forEach((row) => { if (!keep.has(row.dataset.guid)) row.remove(); });
    // Oldest first, each prepended: the newest ends on top.
    [...jobs].reverse().forEach(showJob);
    $('queue-empty').hidden = jobs.length > 0;
  }

  jobsList.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-action]');
    if (!button) return;
    const row = button.closest('.job');
    button.disabled = true;
    clearError();
    try {
      const response = await fetch(`/api/jobs/${encodeURIComponent(row.dataset.guid)}/${button.dataset.action}`, {
        method: 'POST',
        headers: { Accept: 'application/json' },
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) showJob(body);
      else showError(body.message || `That did not work (HTTP ${response.status}).`);
    } catch (_) {
      showError('The server could not be reached; please try again.');
    } finally {
      button.disabled = false;
    }
  });

  // ---- recently encoded videos ----

  // Brings the list in line with the server's (first few only), keeping
  // existing items in place so nothing jumps.
  function showVideos(videos) {
    const limit = Math.max(videosList.children.length, 8);
    const shown = videos.slice(0, limit);
    const existing = new Map([...videosList.children].map((li) => [li.dataset.name, li]));
    let previous = null;
    for (const video of shown) {
      let item = existing.get(video.name);
      existing.delete(video.name);
      if (!item) {
        const holder = document.createElement('template');
        holder.innerHTML = video.html.trim();
        item = holder.content.firstElementChild;
      }
      const inPlace = previous ? previous.nextElementSibling === item : videosList.firstElementChild === item;
      if (!inPlace) {
        if (previous) previous.after(item);
        else videosList.prepend(item);
      }
      previous = item;
    }
    existing.forEach((item) => item.remove());
    $('videos-empty').hidden = shown.length > 0;
  }

  // ---- the live connection ----

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${scheme}//${location.host}/ws`);
    socket.addEventListener('open', () => { retryDelay = 500; });
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (message.type === 'queue') showQueue(message.jobs);
      else if (message.type === 'job') showJob(message.job);
      else if (message.type === 'videos') showVideos(message.videos);
    });
    socket.addEventListener('close', () => {
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  // A plain (script-less) form post lands on /#job={GUID}: the queue shows it.
  if (/^#job=/.test(location.hash)) history.replaceState(null, '', location.pathname);
  connect();
})();
