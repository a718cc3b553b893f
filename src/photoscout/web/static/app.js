// photoscout's pages work without this file; it adds more results on scroll, keyboard navigation, marks and the
// buttons that change things (each a JSON call to /api/v1 with the X-Photoscout-Request header).
"use strict";

function toast(text, bad) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, 4000);
}

async function api(method, url, body) {
  const opts = { method, headers: { "X-Photoscout-Request": "1", "Accept": "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(url, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const err = new Error((data && data.error) || ("the server answered " + resp.status));
    err.data = data;
    throw err;
  }
  return data;
}

function basename(p) { return p.split("/").pop(); }

function card(hit, q, rank) {
  const fig = document.createElement("figure");
  fig.className = "card";
  if (hit.match === false) fig.dataset.match = "false";  // below the cutoff: shown fainter
  fig.dataset.photo = hit.photo_id;
  fig.dataset.path = hit.path;
  const a = document.createElement("a");
  a.href = "/photos/" + hit.photo_id + (q ? "?q=" + encodeURIComponent(q) + "&rank=" + rank : "");
  const img = document.createElement("img");
  img.loading = "lazy";
  img.src = "/api/v1/photos/" + hit.photo_id + "/thumbnail";
  img.alt = basename(hit.path);
  img.width = 180; img.height = 180;
  a.appendChild(img);
  fig.appendChild(a);
  const cap = document.createElement("figcaption");
  const name = document.createElement("span");
  name.className = "name"; name.title = hit.path; name.textContent = basename(hit.path);
  cap.appendChild(name);
  if (hit.why && hit.why.length) {
    const why = document.createElement("span");
    why.className = "why"; why.title = hit.why.join("; "); why.textContent = hit.why[0];
    cap.appendChild(why);
  }
  if (q) {
    const marks = document.createElement("span");
    marks.className = "marks";
    for (const [rel, sign, title] of [["true", "\u2713", "relevant for this query"], ["false", "\u2717", "not relevant"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "mark"; b.dataset.query = q; b.dataset.relevant = rel;
      b.title = title; b.textContent = sign;
      marks.appendChild(b);
    }
    cap.appendChild(marks);
  }
  fig.appendChild(cap);
  return fig;
}

// More results as the end of the grid comes into view (the "More results" link does the same without JS).
function infiniteScroll() {
  const grid = document.getElementById("grid");
  const more = document.getElementById("more");
  if (!grid || !more || !("IntersectionObserver" in window)) return;
  let next = grid.dataset.next;
  let busy = false;
  const q = grid.dataset.q;
  const observer = new IntersectionObserver(async (entries) => {
    if (!entries.some((e) => e.isIntersecting) || busy || !next) return;
    busy = true;
    try {
      // the next page is the same page view, asked for as JSON: the same data the server renders as HTML
      const data = await api("GET", next);
      const offset = data.result.offset;
      data.result.results.forEach((h, i) => grid.appendChild(card(h, q, offset + i)));
      next = data.next_url || "";
      if (next) { more.href = next; } else { more.remove(); observer.disconnect(); }
    } catch (e) {
      toast(e.message, true);
    } finally {
      busy = false;
    }
  }, { rootMargin: "600px" });
  observer.observe(more);
}

// Keyboard: in a photo, left/right for the neighbours in its search and Escape back; in a grid, arrows move.
function keyboard() {
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, textarea, select")) return;
    const prev = document.getElementById("prev"), next = document.getElementById("next");
    if (ev.key === "ArrowLeft" && prev) { location.href = prev.href; return; }
    if (ev.key === "ArrowRight" && next) { location.href = next.href; return; }
    if (ev.key === "Escape" && document.getElementById("back")) { location.href = document.getElementById("back").href; return; }
    const cards = Array.from(document.querySelectorAll("#grid .card a"));
    const at = cards.indexOf(document.activeElement);
    if (!cards.length || !["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(ev.key)) return;
    const perRow = Math.max(1, Math.round(document.getElementById("grid").clientWidth / cards[0].closest(".card").offsetWidth));
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -perRow, ArrowDown: perRow }[ev.key];
    const to = at < 0 ? 0 : Math.min(cards.length - 1, Math.max(0, at + step));
    cards[to].focus();
    ev.preventDefault();
  });
}

document.addEventListener("click", async (ev) => {
  const markButton = ev.target.closest("button.mark");
  if (markButton) {
    const fig = markButton.closest(".card");
    const want = markButton.dataset.relevant === "true";
    const already = fig.classList.contains(want ? "relevant" : "not_relevant");
    try {
      await api("POST", "/api/v1/marks", { query: markButton.dataset.query, photo_id: Number(fig.dataset.photo),
                                           relevant: already ? null : want });
      fig.classList.remove("relevant", "not_relevant");
      if (!already) fig.classList.add(want ? "relevant" : "not_relevant");
      toast(already ? "mark removed" : (want ? "marked relevant" : "marked not relevant"));
    } catch (e) { toast(e.message, true); }
    return;
  }
  const action = ev.target.closest("button.action");
  if (action) {
    if (action.dataset.confirm && !confirm(action.dataset.confirm)) return;
    action.disabled = true;
    try {
      const data = await api("POST", action.dataset.url, action.dataset.body ? JSON.parse(action.dataset.body) : {});
      toast("done");
      if (action.dataset.then) { location.href = action.dataset.then; } else if (document.getElementById("jobs")) {
        liveJobs();  // a job resumed or retried: follow it again
      } else {
        setTimeout(() => location.reload(), 600);
      }
      return data;
    } catch (e) { toast(e.message, true); } finally { action.disabled = false; }
  }
});

document.addEventListener("submit", async (ev) => {
  const form = ev.target;
  if (form.classList.contains("promote")) {
    ev.preventDefault();
    const out = form.parentElement.querySelector("output.verdict");
    const body = { force: form.force.checked, reason: form.reason.value || null };
    try {
      const data = await api("POST", "/api/v1/models/" + encodeURIComponent(form.dataset.model) + "/promote", body);
      out.textContent = "promoted: " + (data.gate.summary || (data.gate.passed ? "the gate passed" : "forced"));
      setTimeout(() => location.reload(), 800);
    } catch (e) {
      out.textContent = e.message;
      out.className = "verdict refused";
    }
  } else if (form.classList.contains("example")) {
    ev.preventDefault();
    try {
      const data = await api("POST", "/api/v1/classes/" + encodeURIComponent(form.name.value) + "/examples",
                             { photo_id: Number(form.dataset.photo) });
      toast("an example of " + data.name + " (" + data.examples.length + " examples, " + data.members + " photos)");
    } catch (e) { toast(e.message, true); }
  } else if (form.classList.contains("settings")) {
    ev.preventDefault();
    const body = { watch: form.watch.checked, full_scan_at: form.full_scan_at.value,
                   quiet_hours: form.quiet_hours.value };
    for (const name of ["rescan_minutes", "threads", "scan_workers", "background_nice"]) {
      if (form[name].value !== "") body[name] = Number(form[name].value);
    }
    const out = form.querySelector("output.verdict");
    try { await api("POST", "/api/v1/settings", body); out.textContent = "saved"; out.className = "verdict"; }
    catch (e) { out.textContent = e.message; out.className = "verdict refused"; }
  } else if (form.classList.contains("learn")) {
    ev.preventDefault();
    try {
      const data = await api("POST", "/api/v1/learned", { query: form.dataset.query });
      toast("learned from " + data.relevant + " ✓ and " + data.not_relevant + " ✗");
      location.reload();
    } catch (e) { toast(e.message, true); }
  } else if (form.classList.contains("album")) {
    ev.preventDefault();
    const body = { name: form.name.value, ...JSON.parse(form.dataset.search) };
    try {
      const saved = await api("POST", "/api/v1/albums", body);
      location.href = "/albums/" + encodeURIComponent(saved.name);
    } catch (e) { toast(e.message, true); }
  } else if (form.classList.contains("newjob")) {
    ev.preventDefault();
    const opt = form.model.selectedOptions[0];
    const body = { kind: opt.dataset.kind, model: opt.value, missing_only: form.missing_only.checked };
    if (form.sample_count.value) body.sample_count = Number(form.sample_count.value);
    try { await api("POST", "/api/v1/jobs", body); location.reload(); } catch (e) { toast(e.message, true); }
  }
});

// Albums: delete one
document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("button.delete-album");
  if (!btn) return;
  try {
    await api("DELETE", "/api/v1/albums/" + encodeURIComponent(btn.dataset.album));
    btn.closest("tr").remove();
  } catch (e) { toast(e.message, true); }
});

// Jobs: progress, rate and ETA, live (polled each second until every job is over: the core's "finished", the
// same test that ends `photoscout jobs status --watch`; a job started or resumed reloads the page).
function liveJobs() {
  const table = document.getElementById("jobs");
  if (!table || liveJobs.timer) return;
  const timer = liveJobs.timer = setInterval(async () => {
    let jobs;
    try { jobs = await api("GET", "/api/v1/jobs?limit=30"); } catch (e) { return; }
    table.dataset.live = jobs.some((j) => !j.finished) ? "on" : "off";
    if (table.dataset.live === "off") { clearInterval(timer); liveJobs.timer = null; }
    const known = new Set(Array.from(table.querySelectorAll("tr[data-job]")).map((r) => r.dataset.job));
    if (jobs.some((j) => !known.has(String(j.id)))) { location.reload(); return; }
    for (const j of jobs) {
      const row = table.querySelector('tr[data-job="' + j.id + '"]');
      if (!row) continue;
      row.querySelector(".status").textContent = j.status;
      const bar = row.querySelector("progress");
      bar.max = j.progress.total || 1; bar.value = j.progress.done;
      row.querySelector(".count").textContent = j.progress.done + "/" + j.progress.total;
      row.querySelector(".rate").textContent = (j.progress.rate_per_s ?? "–") + "/s";
      row.querySelector(".eta").textContent = (j.progress.eta_s ?? "–") + " s";
    }
  }, 1000);
}

document.addEventListener("DOMContentLoaded", () => { infiniteScroll(); keyboard(); liveJobs(); });
