// videoshare page: upload with a progress bar, follow encoding jobs over one
// WebSocket, keep the list of encoded videos current. No polling, no reload.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $('upload-form');
  const input = $('file-input');
  const button = $('upload-button');
  const uploadStatus = $('upload-status');
  const uploadBar = $('upload-progress');
  const uploadLabel = $('upload-label');
  const errorBox = $('upload-error');
  const jobsList = $('jobs');
  const videosList = $('videos');
  const STORE_KEY = 'videoshare.watching';

  // Jobs this browser follows, kept across reloads until they finish.
  const watching = new Set(loadWatching());
  let socket = null;
  let retryDelay = 500;

  function loadWatching() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY));
      return Array.isArray(saved) ? saved : [];
    } catch (_) {
      return [];
    }
  }

  function saveWatching() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify([...watching]));
    } catch (_) { /* private mode: following still works until reload */ }
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

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
    bar.setAttribute('aria-valuetext', text);
    label.textContent = text;
  }

  function jobRow(guid) {
    let row = [...jobsList.children].find((li) => li.dataset.guid === guid);
    if (!row) {
      row = $('job-template').content.firstElementChild.cloneNode(true);
      row.dataset.guid = guid;
      jobsList.prepend(row);
    }
    return row;
  }

  // An update older than what the row shows (it can arrive after a fresher
  // snapshot) is dropped: a finished job stays finished and, within one
  // status, the bar never moves back.
  function isStale(row, job) {
    if (row.dataset.done === 'true') return !job.done;
    return row.dataset.status === job.status && Number(row.dataset.progress) > job.progress;
  }

  function showJob(job) {
    const row = jobRow(job.guid);
    if (isStale(row, job)) return;
    row.querySelector('.job-name').textContent = job.file;
    row.dataset.status = job.status;
    row.dataset.progress = String(job.progress);
    row.dataset.done = String(job.done);
    setBar(row.querySelector('progress'), row.querySelector('.label'), job.progress, job.label);
    if (job.done && watching.delete(job.guid)) {
      saveWatching();
      send({ type: 'unwatch', guid: job.guid });
    }
  }

  function follow(guid) {
    watching.add(guid);
    saveWatching();
    send({ type: 'watch', guid });
  }

  function forget(guid) {
    watching.delete(guid);
    saveWatching();
    const row = [...jobsList.children].find((li) => li.dataset.guid === guid);
    if (row) row.remove();
  }

  // Brings the list in line with the server's, keeping existing <video>
  // elements in place so nothing that is playing gets interrupted.
  function showVideos(videos) {
    const existing = new Map([...videosList.children].map((li) => [li.dataset.name, li]));
    let previous = null;
    for (const video of videos) {
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
    $('videos-empty').hidden = videos.length > 0;
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${scheme}//${location.host}/ws`);
    socket.addEventListener('open', () => {
      retryDelay = 500;
      for (const guid of watching) send({ type: 'watch', guid });
    });
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (message.type === 'job') showJob(message.job);
      else if (message.type === 'videos') showVideos(message.videos);
      // A job this server does not know (or a mangled GUID): stop following it.
      else if (message.type === 'error' && (message.code === 'unknown_job' || message.code === 'bad_guid')) forget(message.guid);
    });
    socket.addEventListener('close', () => {
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  function upload(file) {
    clearError();
    const data = new FormData();
    // The preset first: the server reads the fields in order.
    const preset = document.getElementById('preset-select');
    if (preset) data.append('preset', preset.value);
    data.append('file', file, file.name);
    const request = new XMLHttpRequest();
    request.open('POST', '/upload');
    request.setRequestHeader('Accept', 'application/json');
    request.responseType = 'json';
    button.disabled = true;
    uploadStatus.hidden = false;
    setBar(uploadBar, uploadLabel, 0, 'Uploading .. 0%');

    request.upload.addEventListener('progress', (event) => {
      if (!event.lengthComputable) return;
      const percent = Math.floor((event.loaded * 100) / event.total);
      setBar(uploadBar, uploadLabel, percent, `Uploading .. ${percent}%`);
    });
    request.addEventListener('load', () => {
      button.disabled = false;
      const body = request.response || {};
      if (request.status >= 200 && request.status < 300 && body.job) {
        setBar(uploadBar, uploadLabel, 100, 'Upload complete');
        showJob(body.job);
        follow(body.job.guid);
        form.reset();
      } else {
        uploadStatus.hidden = true;
        showError(body.message || `The upload failed (HTTP ${request.status}).`);
      }
    });
    const lost = () => {
      button.disabled = false;
      uploadStatus.hidden = true;
      showError('The upload failed: the connection to the server was lost. Please try again.');
    };
    request.addEventListener('error', lost);
    request.addEventListener('abort', lost);
    request.send(data);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) {
      showError('Choose a video file first.');
      return;
    }
    upload(file);
  });

  // A plain (script-less) form post lands on /#job={GUID}: follow that job.
  const fromForm = /^#job=(.+)$/.exec(location.hash);
  if (fromForm) {
    try {
      watching.add(decodeURIComponent(fromForm[1]));
      saveWatching();
    } catch (_) { /* a mangled link: nothing to follow */ }
    history.replaceState(null, '', location.pathname);
  }
  for (const guid of watching) jobRow(guid);
  connect();
})();
