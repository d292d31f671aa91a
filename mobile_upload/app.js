// OneEye missing-person upload page: form → presigned POST → live status.
// No build step, no dependencies. Flow: resize the photo to ≤ 1600 px JPEG in the
// browser (phones take 12–48 MP photos; the indexer needs far less), ask the API for a
// presigned POST (POST /api/uploads), send the photo straight to S3 with it, then poll
// GET /api/uploads/{id} until the indexer has accepted or rejected it.
"use strict";

(function () {
  const MAX_SIDE = 1600;
  const JPEG_QUALITY = 0.9;
  const MAX_BYTES = 10 * 1024 * 1024;
  const POLL_TIMEOUT_MS = 180000;
  const STORE = { token: "oneeye.token", api: "oneeye.apiBase", agency: "oneeye.agency",
                  contact: "oneeye.contact", recent: "oneeye.recent" };
  const RECENT_MAX = 20;

  const $ = (id) => document.getElementById(id);
  const form = $("upload-form");
  let photo = null; // the File the user picked

  class UserError extends Error {
    constructor(message, detail) { super(message); this.detail = detail || ""; }
  }

  // ---- settings ------------------------------------------------------------------------
  function apiBase() {
    const fromQuery = new URLSearchParams(location.search).get("api");
    const typed = $("api-base").value.trim();
    const cfg = (window.ONEEYE_CONFIG && window.ONEEYE_CONFIG.apiBase) || "";
    return (fromQuery || typed || cfg || "").replace(/\/+$/, "");
  }

  function apiUrl(path) {
    return /^https?:\/\//.test(path) ? path : apiBase() + path;
  }

  function load() {
    $("token").value = localStorage.getItem(STORE.token) || "";
    $("api-base").value = localStorage.getItem(STORE.api) || "";
    $("agency").value = localStorage.getItem(STORE.agency) || "";
    $("contact").value = localStorage.getItem(STORE.contact) || "";
  }

  function remember() {
    if ($("remember").checked) {
      localStorage.setItem(STORE.token, $("token").value.trim());
      localStorage.setItem(STORE.agency, $("agency").value.trim());
      localStorage.setItem(STORE.contact, $("contact").value.trim());
    }
    saveApi();
  }

  function saveApi() {
    const api = $("api-base").value.trim();
    if (api) localStorage.setItem(STORE.api, api); else localStorage.removeItem(STORE.api);
  }

  // ---- photo ---------------------------------------------------------------------------
  function pick(event) {
    const file = event.target.files && event.target.files[0];
    event.target.value = ""; // picking the same file again must fire change again
    if (!file) return;
    photo = file;
    const img = $("preview-img");
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    img.dataset.url = URL.createObjectURL(file);
    img.src = img.dataset.url;
    const size = file.size >= 1e6 ? `${(file.size / 1e6).toFixed(1)} MB`
                                  : `${Math.max(1, Math.round(file.size / 1e3))} KB`;
    $("preview-caption").textContent = `${file.name || "photo"} · ${size}`;
    $("preview").hidden = false;
    clearError();
  }

  async function decode(file) {
    if (window.createImageBitmap) {
      try {
        return await createImageBitmap(file, { imageOrientation: "from-image" });
      } catch (e) { /* fall through to <img>, which some browsers decode more of */ }
    }
    return await new Promise((resolve, reject) => {
      const img = new Image();
      const url = URL.createObjectURL(file);
      img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("decode failed")); };
      img.src = url;
    });
  }

  // Resize to ≤ MAX_SIDE and re-encode as JPEG (also drops EXIF, e.g. GPS position).
  async function prepare(file) {
    let image;
    try {
      image = await decode(file);
    } catch (e) {
      // Same words as the server's decoder (oneeye/images.py) for iPhone's default format.
      if (/\.(heic|heif)$/i.test(file.name || "") || /^image\/hei[cf]/i.test(file.type || "")) {
        throw new UserError("HEIC is not supported; export as JPEG",
                            "on the iPhone: Settings → Camera → Formats → Most Compatible");
      }
      throw new UserError("not an image — choose a photo (JPEG or PNG)",
                          `${file.name || "the file"} could not be opened as a picture`);
    }
    const w0 = image.width, h0 = image.height;
    if (!w0 || !h0) throw new UserError("not an image — choose a photo (JPEG or PNG)");
    const s = Math.min(1, MAX_SIDE / Math.max(w0, h0));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(w0 * s);
    canvas.height = Math.round(h0 * s);
    const ctx = canvas.getContext("2d");
    // JPEG has no alpha: composite transparent photos on white, as the server's decoder does
    // (a canvas would otherwise turn transparent pixels black).
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    if (image.close) image.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    if (!blob) throw new UserError("the photo could not be prepared — try another one");
    if (blob.size > MAX_BYTES) throw new UserError("file too large — use a smaller photo");
    return { blob, width: canvas.width, height: canvas.height };
  }

  // ---- API -----------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${$("token").value.trim()}` };
    if (body) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(apiUrl(path), { method, headers, cache: "no-store",
                                         body: body ? JSON.stringify(body) : undefined });
    } catch (e) {
      throw new UserError("cannot reach the OneEye service — check the connection and try again");
    }
    let data = {};
    try { data = await resp.json(); } catch (e) { /* keep {} */ }
    if (resp.ok) return data;
    if (resp.status === 401) {
      throw new UserError("agency token not accepted — check it with your coordinator", data.message);
    }
    if (resp.status === 429) throw new UserError(data.message || "too many uploads — wait a minute");
    if (data.details) markFields(data.details);
    throw new UserError(data.message || `the service answered ${resp.status}`);
  }

  function sendToStorage(grant, blob, onProgress) {
    // XMLHttpRequest rather than fetch: it reports upload progress.
    return new Promise((resolve, reject) => {
      const fd = new FormData();
      for (const [k, v] of Object.entries(grant.fields)) fd.append(k, v);
      fd.append("file", blob, "photo.jpg"); // S3 requires the file to be the last field
      const xhr = new XMLHttpRequest();
      xhr.open("POST", grant.url);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else if (xhr.status === 400 && /EntityTooLarge/.test(xhr.responseText)) {
          reject(new UserError("file too large — use a smaller photo"));
        } else reject(new UserError("the upload was refused — try again",
                                    `storage answered ${xhr.status}`));
      };
      xhr.onerror = () => reject(new UserError("the upload failed — check the connection and try again"));
      xhr.send(fd);
    });
  }

  async function poll(statusUrl) {
    const started = Date.now();
    let delay = 700;
    for (;;) {
      const st = await api("GET", statusUrl);
      if (st.state !== "pending") return st;
      if (Date.now() - started > POLL_TIMEOUT_MS) {
        return { state: "pending", message: "still checking the photo — it will be used as soon as it passes; you can close this page" };
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(2000, delay * 1.2);
    }
  }

  // ---- UI ------------------------------------------------------------------------------
  function clearError() {
    $("form-error").hidden = true;
    for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  }

  function showError(message) {
    $("form-error").textContent = message;
    $("form-error").hidden = false;
  }

  function markFields(details) {
    for (const name of Object.keys(details)) {
      const el = $(name);
      if (el) el.classList.add("invalid");
    }
  }

  function status(state, message, detail) {
    const box = $("status");
    const appearing = box.hidden;
    box.hidden = false;
    box.dataset.state = state;
    $("status-message").textContent = message;
    $("status-detail").textContent = detail || "";
    // After a photo verdict offer the next photo; after an error the user fixes the form.
    $("again").hidden = state === "working" || state === "error";
    $("again").textContent = state === "accepted" ? "Upload another photo" : "Choose another photo";
    // On a phone the form fills the screen: bring the answer into view.
    if (appearing || state !== "working") box.scrollIntoView({ block: "center" });
  }

  function progress(fraction) {
    $("progress").hidden = fraction === null;
    if (fraction !== null) $("progress-bar").style.width = `${Math.round(fraction * 100)}%`;
  }

  // This phone's recent uploads with their verdicts (newest first, kept in localStorage: the
  // list is for the officer holding the phone; "Forget" clears it with the token).
  function recent() {
    try {
      const list = JSON.parse(localStorage.getItem(STORE.recent) || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) { return []; }
  }

  // The one date format of OneEye's pages (the desk's "2026-01-31 14:05"), in the phone's
  // own zone, whatever the browser's locale would print.
  function localTime(d) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function showRecent() {
    const list = $("history-list");
    list.textContent = "";
    for (const item of recent()) {
      const li = document.createElement("li");
      li.dataset.state = item.state;
      li.dataset.case = item.case_id || "";
      const when = new Date(item.at);
      const head = document.createElement("b");
      head.textContent = `${item.case_id || ""}${item.name ? " · " + item.name : ""}`;
      li.appendChild(head);
      li.appendChild(document.createTextNode(` · ${item.message || item.state}`));
      const time = document.createElement("small");
      time.textContent = isNaN(when) ? "" : ` · ${localTime(when)}`;
      li.appendChild(time);
      list.appendChild(li);
    }
    $("history").hidden = !list.children.length;
  }

  function addHistory(st, name) {
    const item = { case_id: st.case_id || "", name: name || "", state: st.state,
                   message: st.message || st.state, at: new Date().toISOString() };
    localStorage.setItem(STORE.recent, JSON.stringify([item, ...recent()].slice(0, RECENT_MAX)));
    showRecent();
  }

  // A new case: nothing of the last person stays in the form (the agency fields do).
  function newCase() {
    for (const id of ["case_id", "name", "age", "description"]) $(id).value = "";
    photo = null;
    $("preview").hidden = true;
    $("status").hidden = true;
    clearError();
    $("name").focus();
  }

  // A first check of the contact so the officer hears at once; the server is the authority
  // (it validates the number for its country and normalises it to E.164, oneeye.contacts).
  const CONTACT_RULE = "a phone number in international form starting with + and the " +
    "country code (e.g. +44 20 7946 0958) and/or an email address, separated by a comma";
  function contactProblem(text) {
    const entries = text.split(/[;,]/).map((e) => e.trim()).filter((e) => e);
    if (!entries.length) return `required — ${CONTACT_RULE}.`;
    if (entries.length > 2) return `at most two entries (one phone, one email) — ${CONTACT_RULE}.`;
    const kinds = [];
    for (const entry of entries) {
      if (entry.includes("@")) {
        if (!/^[^\s@<>()]+@[^\s@<>()]+\.[^\s@<>()]+$/.test(entry)) {
          return `"${entry}" is not an email address.`;
        }
        kinds.push("email");
      } else {
        const phone = entry.replace(/^00/, "+");
        const digits = phone.replace(/[\s().-]/g, "");
        if (!/^\+[1-9]\d{6,14}$/.test(digits)) {
          return `"${entry}": ${CONTACT_RULE}.`;
        }
        kinds.push("phone");
      }
    }
    if (new Set(kinds).size !== kinds.length) return `one phone and/or one email — ${CONTACT_RULE}.`;
    return null;
  }

  function formBody() {
    const v = (id) => $(id).value.trim();
    return { case_id: v("case_id") || null, name: v("name"), age: v("age") || null,
             description: v("description") || null, agency: v("agency") || null,
             contact: v("contact") || null };
  }

  async function submit(event) {
    event.preventDefault();
    clearError();
    const body = formBody();
    const problems = [];
    if (!$("token").value.trim()) { problems.push("the agency token"); $("token").classList.add("invalid"); }
    if (!body.name) { problems.push("the person's name"); $("name").classList.add("invalid"); }
    if (!photo) problems.push("a photo");
    if (problems.length) { showError(`Please add ${problems.join(", ")}.`); return; }
    const contactWhy = contactProblem(body.contact || "");
    if (contactWhy && (body.contact || !body.case_id)) {
      $("contact").classList.add("invalid");
      showError(`Contact for sightings: ${contactWhy}`);
      return;
    }
    if (body.age && !/^\d{1,3}$/.test(body.age)) {
      $("age").classList.add("invalid");
      showError("Age must be a whole number of years.");
      return;
    }
    $("submit").disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      status("working", "preparing photo…");
      const { blob } = await prepare(photo);
      status("working", "requesting upload…");
      const grant = await api("POST", "/api/uploads", {
        ...body, content_type: "image/jpeg", size: blob.size,
        filename: (photo.name || "photo.jpg").slice(0, 200) });
      remember(); // only a token the API accepted is kept
      if (!body.case_id) $("case_id").value = grant.case_id; // more photos → same case
      status("working", `uploading photo for ${grant.case_id}…`);
      progress(0);
      await sendToStorage(grant, blob, progress);
      progress(null);
      status("working", "checking photo…", `case ${grant.case_id}`);
      const st = await poll(grant.status_url);
      const detail = st.state === "rejected" ? (st.detail || "") : `case ${st.case_id}`;
      status(st.state, st.message, detail);
      addHistory(st, body.name);
      if (st.state === "accepted") {
        photo = null;
        $("preview").hidden = true;
      }
    } catch (e) {
      progress(null);
      if (e instanceof UserError) {
        status("error", e.message, e.detail);
      } else {
        status("error", "something went wrong — try again", String(e));
      }
    } finally {
      $("submit").disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  function again() {
    $("status").hidden = true;
    $("library").click();
  }

  function forget() {
    for (const k of Object.values(STORE)) localStorage.removeItem(k);
    $("token").value = "";
    showRecent();
    showError("Token and recent uploads forgotten on this phone.");
  }

  document.addEventListener("DOMContentLoaded", () => {
    load();
    $("camera").addEventListener("change", pick);
    $("library").addEventListener("change", pick);
    form.addEventListener("submit", submit);
    $("again").addEventListener("click", again);
    $("new-case").addEventListener("click", newCase);
    showRecent();
    $("forget").addEventListener("click", forget);
    $("api-base").addEventListener("change", saveApi);
    document.body.dataset.ready = "true";
  });
})();
