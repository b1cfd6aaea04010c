// cellar status page: polls /api/status every second and redraws. When the poll fails
// or the server says its own view is stale, the page says so in a banner and greys
// the tiles, so that nobody reads old green tiles as good news.
"use strict";

(function () {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 2500;
  let lastOK = 0;          // Date.now() of the last successful poll
  let staleAfter = 5;      // seconds; the server says how long
  let last = null;         // last snapshot received
  let serverSkewMs = 0;    // browser clock minus server clock
  const started = Date.now();

  const $ = (id) => document.getElementById(id);

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    }[c]));
  }

  function pad(n) { return String(n).padStart(2, "0"); }
  function hms(t) {
    const d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 2000) return "";
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function secs(s) {
    if (s == null) return "—";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    return m + " min " + Math.round(s - m * 60) + " s";
  }
  function ago(t) {
    const ms = Date.now() - serverSkewMs - new Date(t).getTime();
    if (!(ms >= 0)) return "";
    return secs(ms / 1000) + " ago";
  }
  function rate(v) {
    if (v == null) return "—";
    if (v === 0) return "0";
    if (v >= 100) return Math.round(v).toString();
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function short(id, cellId) {
    if (cellId && id.startsWith(cellId + "-")) return id.slice(cellId.length + 1);
    return id;
  }

  function spark(history) {
    if (!history || history.length < 2) return "";
    const w = 300, h = 40;
    const max = Math.max(1, ...history.map((p) => p.rps));
    const x = (i) => (i / (history.length - 1)) * w;
    const y = (v) => h - (v / max) * (h - 2) - 1;
    const line = history.map((p, i) => (i ? "L" : "M") + x(i).toFixed(1) + " " + y(p.rps).toFixed(1)).join(" ");
    const area = "M0 " + h + " " + history.map((p, i) => "L" + x(i).toFixed(1) + " " + y(p.eps).toFixed(1)).join(" ") + " L" + w + " " + h + " Z";
    return '<svg class="spark" viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none" aria-hidden="true">' +
      '<path class="eps" d="' + area + '"/><path class="rps" d="' + line + '"/></svg>';
  }

  function nodeDetail(n) {
    const parts = [];
    if (n.note) parts.push(n.note);
    if (n.never_seen) {
      parts.push("never seen by this view: declared, but not in the gossip");
    } else if (n.state === "down") {
      if (n.since) parts.push("down since " + hms(n.since));
      if (n.probe) parts.push(n.probe.replace(/^unreachable: /, ""));
      if (n.process && n.process !== "running") parts.push("process " + n.process);
      if (n.started && n.ready_seconds != null) parts.push("last start took " + secs(n.ready_seconds));
    } else {
      if (n.failed_probes) parts.push("missed " + n.failed_probes + (n.failed_probes === 1 ? " probe" : " probes in a row"));
      if (n.started) parts.push((n.state === "ready" ? "started " : "starting since ") + hms(n.started));
      if (n.ready_seconds != null) parts.push("ready in " + secs(n.ready_seconds));
      else if (n.started && n.state !== "ready") parts.push(ago(n.started).replace(" ago", "") + " so far");
      if (n.state !== "ready" && n.since) parts.push(n.state + " since " + hms(n.since));
      if (n.applied_index) parts.push("applied #" + n.applied_index);
      if (n.gauges && n.gauges.objects != null) parts.push(Math.round(n.gauges.objects).toLocaleString() + " objects");
      if (!n.in_gossip) parts.push("not in gossip");
    }
    return parts.join(" · ");
  }

  function nodeHTML(n, cellId) {
    let label = n.state;
    if (n.state === "rebuilding" && n.progress > 0) label += " " + Math.round(n.progress * 100) + "%";
    let html = '<div class="node" data-node="' + esc(n.id) + '" data-role="' + esc(n.role) + '" data-state="' + esc(n.state) + '">' +
      '<span class="name" title="' + esc(n.admin_addr || "") + '">' + esc(short(n.id, cellId)) +
      (n.leader ? '<span class="leader">LEADER</span>' : "") + "</span>" +
      '<span class="state">' + esc(label) + "</span>";
    if (n.state === "rebuilding") {
      html += '<div class="progress"><div style="width:' + Math.round((n.progress || 0) * 100) + '%"></div></div>';
    }
    html += '<div class="detail">' + esc(nodeDetail(n)) + "</div></div>";
    return html;
  }

  // repairHTML is the row of the cell's repair loop, from the gauges of the placement
  // node that runs it (repair_*), or "" when none reports.
  function repairHTML(c) {
    let g = null;
    for (const tier of c.tiers) {
      for (const n of tier.nodes) {
        if (n.state !== "down" && n.gauges && n.gauges.repair_leading === 1) g = n.gauges;
      }
    }
    if (!g || !g.repair_passes) return "";
    const under = Math.round(g.repair_under_replicated || 0), lost = Math.round(g.repair_lost || 0);
    const mib = (g.repair_bytes || 0) / (1 << 20);
    const parts = [under === 0 ? "every object at its copies" : under.toLocaleString() + " under-replicated"];
    if (lost) parts.push(lost.toLocaleString() + " with no copy left");
    parts.push(Math.round(g.repair_objects_repaired || 0).toLocaleString() + " repaired (" + mib.toFixed(mib >= 10 ? 0 : 1) + " MiB)");
    parts.push("corrupt " + Math.round(g.repair_corrupt_found || 0) + " found, " + Math.round(g.repair_corrupt_repaired || 0) + " fixed");
    parts.push(Math.round(g.repair_gc_deleted_blobs || 0).toLocaleString() + " orphans collected");
    return '<div class="repair" data-repair="' + (under === 0 && !lost ? "ok" : "under") + '" data-under="' + under + '">repair: ' +
      esc(parts.join(" · ")) + "</div>";
  }

  function cellHTML(c) {
    let html = '<article class="tile" data-cell="' + esc(c.id) + '" data-health="' + esc(c.health) + '">' +
      '<div class="tile-head"><h2>' + esc(c.id) + '</h2><span class="health" data-health="' + esc(c.health) + '">' + esc(c.health) + "</span></div>" +
      '<p class="reason">' + esc(c.reason || (c.health === "serving" ? "every operation served" : "")) + "</p>";
    html += '<div class="ops">' + (c.operations || []).map((o) =>
      '<span class="chip" data-op="' + esc(o.name) + '" data-ok="' + o.ok + '" title="' +
      esc(o.ok ? "served" : "needs " + (o.missing || []).join(", ")) + '">' + esc(o.name) + (o.ok ? " ✓" : " ✗") + "</span>").join("") + "</div>";
    const t = c.traffic;
    if (t) {
      const errPct = t.error_ratio * 100;
      html += '<div class="traffic" data-traffic="true">' +
        '<div class="metric"><div class="label">requests/s</div><div class="value" data-metric="rps">' + rate(t.requests_per_second) + "</div></div>" +
        '<div class="metric"><div class="label">errors</div><div class="value' + (errPct >= 1 ? " bad" : "") + '" data-metric="errors">' +
        (t.requests_per_second > 0 ? errPct.toFixed(errPct >= 10 || errPct === 0 ? 0 : 1) + "%" : "—") + "</div></div>" +
        '<div class="metric"><div class="label">p99</div><div class="value" data-metric="p99">' + secs(t.p99_seconds) + "</div></div></div>" +
        spark(t.history);
    } else {
      html += '<p class="nodata" data-traffic="false">no traffic figures: no gateway answers its /metrics</p>';
    }
    const ix = c.index;
    html += '<div class="quorum" data-quorum="' + ix.quorum + '">' + (ix.quorum ? "index quorum ✓ " : "NO index quorum ✗ ") +
      ix.ready + "/" + ix.total + " ready, " + ix.need + " needed" +
      (ix.leader ? " · leader " + esc(short(ix.leader, c.id)) : "") + "</div>";
    html += repairHTML(c);
    for (const tier of c.tiers) {
      html += '<div class="tier" data-tier="' + esc(tier.role) + '"><div class="tier-head"><span>' + esc(tier.role) +
        "</span><span>" + tier.ready + "/" + tier.total + " ready</span></div>" +
        tier.nodes.map((n) => nodeHTML(n, c.id)).join("") + "</div>";
    }
    return html + "</article>";
  }

  function eventHTML(e) {
    return '<li data-kind="' + esc(e.kind) + '" data-cell="' + esc(e.cell || "") + '" data-node="' + esc(e.node || "") +
      '" data-from="' + esc(e.from || "") + '" data-to="' + esc(e.to || "") + '"><time>' + hms(e.time) + "</time>" +
      '<span class="kind" data-kind="' + esc(e.kind) + '">' + esc(e.kind) + '</span><span class="msg">' + esc(e.message) + "</span></li>";
  }

  // moveHTML is one bucket move as the supervisor recorded it (DATA_DIR/moves.json).
  function moveHTML(m) {
    const pct = m.objects_planned > 0 ? Math.min(100, Math.round(100 * m.objects_copied / m.objects_planned)) : 0;
    let state = m.phase;
    if (m.in_progress && m.silent) state += " — no word for " + secs(m.silent_seconds);
    // Catch-up passes copy again what changed: the copies can outnumber the objects.
    const parts = [m.objects_copied.toLocaleString() + " objects copied (" + m.objects_planned.toLocaleString() + " in the bucket when it began)"];
    if (m.in_progress && m.objects_per_s > 0) parts.push(Math.round(m.objects_per_s).toLocaleString() + " objects/s");
    if (m.in_progress && m.eta_ns > 0) parts.push("ETA " + secs(m.eta_ns / 1e9));
    if (m.write_pause_ns > 0) parts.push("writes paused " + secs(m.write_pause_ns / 1e9));
    parts.push("plan " + m.plan_id + ", map v" + m.map_version + " when planned");
    parts.push(m.in_progress ? "started " + hms(m.started) : "ended " + hms(m.ended));
    if (m.error) parts.push(m.error);
    let html = '<div class="move" data-bucket="' + esc(m.bucket) + '" data-phase="' + esc(m.phase) + '" data-in-progress="' + m.in_progress + '">' +
      '<span class="what">' + (m.in_progress ? "moving " : "moved ") + "<b>" + esc(m.bucket) + "</b> " + esc(m.source) + " → " + esc(m.target) + "</span>" +
      '<span class="phase">' + esc(state) + "</span>";
    if (m.in_progress) html += '<div class="progress"><div style="width:' + pct + '%"></div></div>';
    return html + '<div class="detail">' + esc(parts.join(" · ")) + "</div></div>";
  }

  function renderMoves(s) {
    const moves = s.moves || [];
    const running = moves.filter((m) => m.in_progress);
    const done = moves.filter((m) => !m.in_progress).slice(0, 3);
    const el = $("moves");
    el.hidden = moves.length === 0;
    el.dataset.inProgress = String(running.length > 0);
    el.innerHTML = moves.length ? "<h2>" + (running.length ? "Bucket move in progress" : "Bucket moves") + "</h2>" +
      running.concat(done).map(moveHTML).join("") : "";
  }

  function renderCellMap(s) {
    const m = s.cell_map;
    const el = $("cellmap");
    el.hidden = !m;
    if (!m) { el.innerHTML = ""; return; }
    const holder = (h) => '<span class="holder" data-node="' + esc(h.id) + '" data-version="' + h.version + '" data-state="' + esc(h.state) + '">' +
      esc(h.id) + " v" + h.version + (h.leader ? " (leader)" : "") + "</span>";
    el.dataset.version = String(m.version);
    el.innerHTML = '<h3>Cell map <span class="version">version ' + m.version + "</span></h3>" +
      '<div class="holders">map group: ' + m.members.map(holder).join(" ") + "</div>" +
      '<div class="holders">gateways: ' + (m.gateways.length ? m.gateways.map(holder).join(" ") : "none known") + "</div>" +
      (m.behind && m.behind.length ? '<div class="behind">on an older map: ' + esc(m.behind.join(", ")) + "</div>" : "");
  }

  function render(s) {
    const sum = s.summary;
    $("summary").textContent = sum.cells_serving + " of " + sum.cells + " cells serving · " +
      sum.nodes_ready + " of " + sum.nodes + " nodes ready" + (sum.nodes_down ? " · " + sum.nodes_down + " down" : "");
    const off = $("guardrails-off");
    off.hidden = !s.guardrails_off;
    off.textContent = s.guardrails_off ? s.guardrails_off_banner : "";
    document.body.dataset.guardrailsOff = String(!!s.guardrails_off);
    $("cells").innerHTML = s.cells.map(cellHTML).join("");
    $("gateways").innerHTML = s.gateways.length ? s.gateways.map((n) => nodeHTML(n, "")).join("") :
      '<p class="muted">no gateway known</p>';
    $("events").innerHTML = s.events.map(eventHTML).join("");
    renderMoves(s);
    renderCellMap(s);
    const src = s.source || {};
    if (src.down_after_missed_probes) $("down-after").textContent = src.down_after_missed_probes;
    $("source").textContent = "Built from gossip (observer " + (src.observer || "—") + ", " + src.gossip_members +
      " members alive) and direct probes of every node" + (src.cluster_file ? "; nodes also from " + src.cluster_file : "") +
      "; cells judged against the shape declared by " + (src.topology === "gossip" ? "the index group sizes the nodes gossip" : "the " + (src.topology || "gossip")) +
      (src.audit_log ? "; drill events from " + src.audit_log : "") +
      (src.moves_file ? "; bucket moves from " + src.moves_file : "") +
      ". Served by the status server itself: it needs no gateway, index or storage node.";
  }

  function showStale() {
    const banner = $("stale");
    const now = Date.now();
    let stale = false, text = "", why = "";
    if (lastOK === 0) {
      if (now - started > staleAfter * 1000) {
        stale = true; text = "view is stale: no update received yet"; why = "the status server does not answer";
      }
    } else if (now - lastOK > staleAfter * 1000) {
      stale = true;
      text = "view is stale: last update " + Math.round((now - lastOK) / 1000) + " s ago";
      why = "the status server does not answer this page";
    } else if (last && last.stale) {
      stale = true;
      const age = last.last_contact_age_seconds || 0;
      text = "view is stale: last update " + Math.round(age) + " s ago";
      why = last.stale_reason || "";
    }
    document.body.dataset.stale = String(stale);
    const sum = $("summary");
    if (stale && !sum.textContent.startsWith("last known: ")) sum.textContent = "last known: " + sum.textContent;
    banner.hidden = !stale;
    if (stale) banner.innerHTML = esc(text) + "<small>" + esc(why) + " — the tiles show the last known state, not the current one</small>";
    $("clock").textContent = hms(now);
    $("updated").textContent = lastOK ? "updated " + secs((now - lastOK) / 1000) + " ago" : "";
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const resp = await fetch("api/status", { cache: "no-store", signal: ctl.signal });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const s = await resp.json();
      last = s;
      lastOK = Date.now();
      staleAfter = s.stale_after_seconds || staleAfter;
      serverSkewMs = lastOK - new Date(s.generated).getTime();
      if (Math.abs(serverSkewMs) < 2000) serverSkewMs = 0; // ignore the poll's own delay
      render(s);
      document.body.dataset.loaded = "true";
    } catch (e) {
      // Keep what is drawn; showStale says how old it is.
    } finally {
      clearTimeout(timer);
      showStale();
      setTimeout(poll, POLL_MS);
    }
  }

  setInterval(showStale, 500);
  poll();
})();
