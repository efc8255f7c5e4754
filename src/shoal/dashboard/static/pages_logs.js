/* Dashboard pages for what the cluster wrote: logs (list and viewer) and the timeline. */
"use strict";

(() => {
  const shoal = window.shoal;
  const { h, setText, put, fmt, short, distinctId, idSpan, badge, api, dataTable, pageHead, field,
    logsHref, logViewer } = shoal;

  // ---------------------------------------------------------------------------------------
  // Logs: the list per node, and one log in the viewer (ui.js)
  // ---------------------------------------------------------------------------------------
  function logsPage({ query }) {
    const nodeId = query.get("node_id");
    const workerId = query.get("worker_id");
    const pid = query.get("pid");
    if (nodeId && (workerId || pid || query.get("log") === "node")) {
      const page = { title: "Log" };
      const params = { node_id: nodeId };
      if (workerId) params.worker_id = workerId;
      else if (pid) params.pid = pid;
      const viewer = logViewer(params, page);
      page.el = h("div", { id: "page-log", data: { nodeId, workerId, pid } },
        h("div", { class: "crumbs" }, h("a", { href: "#/logs" }, "Logs"), " / ",
          h("a", { href: logsHref({ node_id: nodeId }), class: "mono" }, `node ${short(nodeId)}`),
          " / ", workerId ? `worker ${short(workerId)}` : pid ? `pid ${pid}` : "node log"),
        h("div", { class: "panel" }, viewer.el));
      page.refresh = viewer.refresh;
      return page;
    }

    const box = h("div", { id: "log-nodes" });
    const tables = new Map();
    const el = h("div", { id: "page-logs" },
      pageHead("Logs", nodeId ? h("span", { class: "crumbs" }, "node ",
        h("span", { class: "mono" }, short(nodeId)), " · ", h("a", { href: "#/logs" }, "all nodes"))
        : null),
      box);

    function tableFor(n) {
      let t = tables.get(n.node_id);
      if (t) return t;
      const table = dataTable({
        id: null,
        key: (l) => l.name,
        rowData: (l) => ({
          logName: l.name, kind: l.kind, pid: l.pid, workerId: l.worker_id || "",
          alive: l.alive === undefined ? "" : l.alive,
        }),
        empty: "No logs.",
        columns: [
          {
            title: "Log", value: (l) => {
              const q = { node_id: n.node_id };
              if (l.kind === "node") q.log = "node";
              else if (l.worker_id) q.worker_id = l.worker_id;
              else q.pid = l.pid;
              return h("a", {
                class: "log-link mono", href: logsHref(q),
                data: { logName: l.name, pid: l.pid, workerId: l.worker_id },
              }, l.name);
            },
          },
          { title: "Kind", value: (l) => l.kind },
          { title: "PID", cls: "num", value: (l) => (l.pid ? String(l.pid) : "–") },
          { title: "Worker", value: (l) => (l.worker_id ? idSpan(l.worker_id) : "–") },
          { title: "Size", cls: "num right", value: (l) => fmt.bytes(l.size) },
          {
            title: "Process", value: (l) => (l.kind === "node" ? badge("node daemon", "head")
              : l.alive ? badge("alive", "ok") : badge("exited", "")),
          },
        ],
      });
      const panel = h("div", { class: "panel flush node-logs", data: { nodeId: n.node_id } },
        h("h2", null, "Node ", h("span", { class: "mono" }, n.ip), " ",
          h("span", { class: "muted mono small", title: n.node_id }, short(n.node_id))),
        table.el);
      t = { table, panel };
      tables.set(n.node_id, t);
      return t;
    }

    async function refresh() {
      const { nodes } = await api("/api/logs");
      const shown = nodes.filter((n) => !nodeId || n.node_id === nodeId);
      const panels = shown.map((n) => {
        const t = tableFor(n);
        const order = { node: 0 };
        const logs = n.logs.slice().sort((a, b) =>
          (order[a.kind] ?? 1) - (order[b.kind] ?? 1) ||
          Number(Boolean(b.alive)) - Number(Boolean(a.alive)) || a.name.localeCompare(b.name));
        t.table.update(logs);
        return t.panel;
      });
      if (!panels.length) {
        put(box, h("div", { class: "panel empty" },
          nodeId ? "This node has no logs here (is it alive?)." : "No live nodes."));
        return;
      }
      box._sig = null;
      panels.forEach((p, i) => {
        if (box.children[i] !== p) box.insertBefore(p, box.children[i] || null);
      });
      while (box.children.length > panels.length) box.lastChild.remove();
    }
    return { el, refresh, title: "Logs" };
  }

  // ---------------------------------------------------------------------------------------
  // Timeline
  // ---------------------------------------------------------------------------------------
  // A track's label: the trace names workers "worker:<worker id>" (as Ray does); show a
  // short id and the pid.
  function workerLabel(name, tid) {
    const id = name && name.startsWith("worker:") ? name.slice(7) : "";
    if (id && /^[0-9a-f]{16,}$/.test(id)) return `${short(id)} · pid ${tid}`;
    return `worker ${tid}`;
  }

  function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  /* Where a fraction of the trace's span falls, keeping a margin at the right end so the
   * last bar stays in view at 1×. */
  const TL_MARGIN = 16;
  const tlAt = (frac) => `calc(${(frac * 100).toFixed(4)}% - ${(frac * TL_MARGIN).toFixed(2)}px)`;

  function timelinePage() {
    const page = { title: "Timeline", every: 2000 };
    const zoomSel = h("select", { id: "timeline-zoom" },
      [1, 2, 4, 8, 16, 32, 64].map((z) => h("option", { value: z }, `${z}×`)));
    const live = h("input", { type: "checkbox", id: "timeline-live" });
    const refreshBtn = h("button", { type: "button", id: "timeline-refresh" }, "Refresh");
    const count = h("span", { class: "count-note", id: "timeline-count" });
    const box = h("div", { id: "timeline-box" });
    const legend = h("div", { class: "legend", id: "timeline-legend" });
    const tip = h("div", { class: "tl-tooltip", id: "tl-tooltip", hidden: true });
    let events = null;
    let want = true;

    refreshBtn.addEventListener("click", () => { want = true; if (page.kick) page.kick(); });
    zoomSel.addEventListener("change", () => draw(true));
    live.addEventListener("change", () => { if (live.checked && page.kick) page.kick(); });

    page.el = h("div", { id: "page-timeline" },
      pageHead("Timeline", count, h("span", { class: "spacer" }),
        h("a", {
          class: "button", id: "timeline-download", href: "/api/timeline?download=1",
          download: "timeline.json", title: "open it in chrome://tracing or ui.perfetto.dev",
        }, "Download trace (JSON)")),
      h("div", { class: "tl-controls" },
        field("Zoom", zoomSel),
        h("label", { class: "check" }, live, "Live (every 2 s)"),
        refreshBtn,
        h("span", { class: "muted small" },
          "One row per worker; a bar per task. Hover a bar for details, click it to open the task.")),
      box, legend, tip);

    function showTip(ev) {
      const bar = ev.target.closest(".tl-bar");
      if (!bar) {
        tip.hidden = true;
        return;
      }
      const d = bar._ev;
      tip.replaceChildren(
        h("div", { class: "t-name mono" }, d.name),
        h("div", { class: "t-row" }, `duration ${fmt.dur(d.dur / 1000)}`),
        h("div", { class: "t-row" }, `started +${fmt.dur((d.ts - bar._t0) / 1000)}`),
        d.args && d.args.state ? h("div", { class: "t-row" }, `state ${d.args.state}`) : null,
        d.args && d.args.task_id ? h("div", { class: "t-row mono" }, `task ${distinctId(d.args.task_id)}`) : null,
        h("div", { class: "t-row" }, bar._where));
      tip.hidden = false;
      const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      const y = Math.min(ev.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
      tip.style.left = `${Math.max(4, x)}px`;
      tip.style.top = `${Math.max(4, y)}px`;
    }

    function draw(keepScroll) {
      if (!events) return;
      const old = box.querySelector(".tl-scroll");
      const frac = old && old.scrollWidth > old.clientWidth
        ? old.scrollLeft / (old.scrollWidth - old.clientWidth) : 0;
      const spans = events.filter((e) => e.ph === "X");
      setText(count, `${spans.length} task${spans.length === 1 ? "" : "s"}`);
      if (!spans.length) {
        box.replaceChildren(h("div", { class: "panel empty", id: "timeline-empty" },
          "No task has run yet: the timeline is empty."));
        legend.replaceChildren();
        return;
      }
      const procs = {};
      const threads = {};
      for (const e of events) {
        if (e.ph !== "M" || !e.args) continue;
        if (e.name === "process_name") procs[e.pid] = e.args.name;
        if (e.name === "thread_name") threads[`${e.pid}:${e.tid}`] = e.args.name;
      }
      let t0 = Infinity;
      let t1 = -Infinity;
      for (const s of spans) {
        t0 = Math.min(t0, s.ts);
        t1 = Math.max(t1, s.ts + (s.dur || 0));
      }
      const span = Math.max(t1 - t0, 1);
      const groups = new Map();
      for (const s of spans) {
        if (!groups.has(s.pid)) groups.set(s.pid, new Map());
        const g = groups.get(s.pid);
        if (!g.has(s.tid)) g.set(s.tid, []);
        g.get(s.tid).push(s);
      }
      const colors = new Map();
      for (const s of spans) if (!colors.has(s.name)) colors.set(s.name, colors.size % 8);

      const zoom = Number(zoomSel.value) || 1;
      // Roughly how wide the drawing is, to write a task's name only in bars it fits in.
      const plotPx = Math.max(200, (box.clientWidth || 1000) - 190) * zoom;
      const labels = h("div", { class: "tl-labels" }, h("div", { class: "tl-label-head" }, "worker"));
      const inner = h("div", { class: "tl-inner" });
      inner.style.width = `${zoom * 100}%`;
      const axis = h("div", { class: "tl-axis" });
      const step = niceStep(span / (8 * zoom));
      for (let t = 0; t <= span + 1e-9; t += step) {
        const tick = h("div", { class: "tl-tick" }, t === 0 ? "0" : `+${fmt.dur(t / 1000)}`);
        tick.style.left = tlAt(t / span);
        axis.appendChild(tick);
      }
      inner.appendChild(axis);
      for (const pid of [...groups.keys()].sort((a, b) => a - b)) {
        const pname = procs[pid] || `node ${pid}`;
        labels.appendChild(h("div", { class: "tl-group", title: pname }, pname));
        inner.appendChild(h("div", { class: "tl-group-track" }));
        const g = groups.get(pid);
        for (const tid of [...g.keys()].sort((a, b) => a - b)) {
          const tname = workerLabel(threads[`${pid}:${tid}`], tid);
          labels.appendChild(h("div", { class: "tl-label", title: tname }, tname));
          const row = h("div", { class: "tl-row", data: { pid, tid } });
          for (const e of g.get(tid)) {
            const failed = e.args && e.args.state === "FAILED";
            const bar = h("div", {
              class: `tl-bar c${colors.get(e.name)}${failed ? " failed" : ""}`,
              data: { name: e.name, dur: e.dur, taskId: e.args && e.args.task_id },
              "aria-label": `${e.name} ${fmt.dur(e.dur / 1000)}`,
            }, ((e.dur || 0) / span) * plotPx > 40 ? e.name : null);
            bar.style.left = tlAt((e.ts - t0) / span);
            bar.style.width = tlAt((e.dur || 0) / span);
            bar._ev = e;
            bar._t0 = t0;
            bar._where = `${pname} · ${tname}`;
            row.appendChild(bar);
          }
          inner.appendChild(row);
        }
      }
      const scroll = h("div", { class: "tl-scroll" }, inner);
      const tl = h("div", { class: "tl", id: "timeline" }, labels, scroll);
      tl.addEventListener("mousemove", showTip);
      tl.addEventListener("mouseleave", () => { tip.hidden = true; });
      tl.addEventListener("click", (ev) => {
        const bar = ev.target.closest(".tl-bar");
        if (bar && bar.dataset.taskId) window.location.hash = `#/tasks/${bar.dataset.taskId}`;
      });
      box.replaceChildren(tl);
      if (keepScroll && scroll.scrollWidth > scroll.clientWidth) {
        scroll.scrollLeft = frac * (scroll.scrollWidth - scroll.clientWidth);
      }
      legend.replaceChildren(
        h("span", null, `trace starts ${fmt.time(t0 / 1000)}, spans ${fmt.dur(span / 1000)}`),
        ...[...colors.entries()].slice(0, 24).map(([name, c]) =>
          h("span", { class: "mono" }, h("span", { class: `swatch c${c}` }), name)),
        h("span", null, h("span", { class: "swatch failed-swatch" }), "failed"));
    }

    page.refresh = async () => {
      if (!want && !live.checked) return false; // nothing asked: nothing fetched
      want = false;
      events = await api("/api/timeline");
      draw(true);
    };
    return page;
  }

  Object.assign(shoal.pages, { logsPage, timelinePage });
})();
