// A small tus 1.0 client (core + creation + termination) for videoshare's
// /files endpoint: creates an upload, sends the file in PATCH requests and,
// when a connection drops, asks HEAD where the server is and goes on from
// there. The upload's address is remembered per file (name, size, date) so
// choosing the same file again after a reload resumes it too.
'use strict';

(() => {
  const VERSION = '1.0.0';
  const CHUNK = 16 * 1024 * 1024;
  // Waits between attempts after a failure; the upload gives up once they
  // are used up without a byte of progress. Together they outlast the
  // server's 30 s body timeout, which frees an upload whose old connection
  // it has not yet seen drop (it answers 423 until then).
  const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, 8000, 10000, 10000];
  const STORE_PREFIX = 'videoshare.tus:';

  function fingerprint(file) {
    return `${STORE_PREFIX}${file.name}:${file.size}:${file.lastModified}`;
  }

  function remembered(file) {
    try { return localStorage.getItem(fingerprint(file)); } catch (_) { return null; }
  }

  function remember(file, url) {
    try {
      if (url) localStorage.setItem(fingerprint(file), url);
      else localStorage.removeItem(fingerprint(file));
    } catch (_) { /* private mode: resuming still works until reload */ }
  }

  // UTF-8 safe base64 for Upload-Metadata values.
  function base64(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = '';
    bytes.forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary);
  }

  // The server's sentence for a refusal, or a plain one.
  function reason(xhr, fallback) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.message) return body.message;
    } catch (_) { /* not JSON */ }
    return `${fallback} (HTTP ${xhr.status})`;
  }

  // One request; resolves with the XHR whatever its status, rejects only
  // when the network failed (or the upload was aborted).
  function request(method, url, headers, body, onProgress, handle) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      handle.xhr = xhr;
      xhr.open(method, url);
      xhr.setRequestHeader('Tus-Resumable', VERSION);
      Object.entries(headers).forEach(([k, v]) => xhr.setRequestHeader(k, v));
      if (onProgress) xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded));
      xhr.addEventListener('load', () => resolve(xhr));
      xhr.addEventListener('error', () => reject(new Error('network')));
      xhr.addEventListener('abort', () => reject(new Error('aborted')));
      xhr.send(body === undefined ? null : body);
    });
  }

  const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

  // Uploads `file`. Options: metadata (object of strings), onProgress(sent,
  // total), onRetry(attempt, delayMs). Returns { promise, abort() }; the
  // promise resolves with the job GUID the server gave the finished upload.
  function upload(file, options) {
    const handle = { aborted: false, xhr: null, url: null };
    const progress = options.onProgress || (() => {});

    async function create() {
      const meta = Object.entries(Object.assign({ filename: file.name }, options.metadata || {}))
        .map(([k, v]) => `${k} ${base64(String(v))}`).join(',');
      const xhr = await request('POST', '/files', {
        'Upload-Length': String(file.size),
        'Upload-Metadata': meta,
      }, undefined, null, handle);
      if (xhr.status !== 201) throw new Error(reason(xhr, 'The server refused the upload'));
      const url = new URL(xhr.getResponseHeader('Location'), location.href).pathname;
      remember(file, url);
      return url;
    }

    // Where the server is, or null if it no longer knows the upload.
    async function offsetAt(url) {
      const xhr = await request('HEAD', url, {}, undefined, null, handle);
      if (xhr.status === 404 || xhr.status === 410) return null;
      if (xhr.status !== 200) throw Object.assign(new Error(`HEAD failed (HTTP ${xhr.status})`), { retry: true });
      return { offset: Number(xhr.getResponseHeader('Upload-Offset')), job: xhr.getResponseHeader('Upload-Job') };
    }

    async function run() {
      let url = remembered(file);
      let state = url ? await offsetAt(url) : null;
      if (!state) {
        url = await create();
        state = { offset: 0, job: null };
      }
      handle.url = url;
      let offset = state.offset;
      let job = state.job;
      let failures = 0;
      progress(offset, file.size);
      while (!job) {
        if (handle.aborted) throw new Error('aborted');
        try {
          if (failures > 0) {
            const now = await offsetAt(url);
            if (!now) throw new Error('The server no longer has this upload; please start it again.');
            offset = now.offset;
            job = now.job;
            if (job) break;
          }
          const start = offset;
          const chunk = file.slice(start, Math.min(start + CHUNK, file.size));
          const xhr = await request('PATCH', url, {
            'Upload-Offset': String(start),
            'Content-Type': 'application/offset+octet-stream',
          }, chunk, (sent) => progress(start + sent, file.size), handle);
          if (xhr.status === 204) {
            offset = Number(xhr.getResponseHeader('Upload-Offset'));
            job = xhr.getResponseHeader('Upload-Job');
            failures = 0;
            progress(offset, file.size);
            continue;
          }
          // Out of step, busy, interrupted or a server hiccup: ask and retry.
          if ([400, 409, 423, 500, 502, 503, 504].includes(xhr.status)
              && (xhr.status !== 400 || xhr.getResponseHeader('Upload-Offset') !== null)) {
            throw Object.assign(new Error(reason(xhr, 'The upload was interrupted')), { retry: true });
          }
          remember(file, null);
          throw new Error(reason(xhr, 'The server refused the upload'));
        } catch (error) {
          if (handle.aborted) throw new Error('aborted');
          const retryable = error.message === 'network' || error.retry;
          if (!retryable || failures >= RETRY_DELAYS.length) {
            throw new Error(error.message === 'network'
              ? 'The connection to the server was lost and did not come back; choose the file again to resume.'
              : error.message);
          }
          const delay = RETRY_DELAYS[failures];
          failures += 1;
          if (options.onRetry) options.onRetry(failures, delay);
          await sleep(delay);
        }
      }
      remember(file, null);
      return job;
    }

    handle.promise = run();
    handle.abort = () => {
      handle.aborted = true;
      if (handle.xhr) handle.xhr.abort();
      remember(file, null);
      if (handle.url) {
        const xhr = new XMLHttpRequest();
        xhr.open('DELETE', handle.url);
        xhr.setRequestHeader('Tus-Resumable', VERSION);
        xhr.send();
      }
    };
    return handle;
  }

  window.videoshareTus = { upload };
})();
