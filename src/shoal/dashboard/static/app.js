/* The shoal dashboard: one page, routes in the URL fragment, the JSON API under /api/.
 *
 * No build step and no dependencies. The Content-Security-Policy is `default-src 'self'`:
 * nothing here uses inline scripts, eval or style attributes parsed from HTML (sizes are set
 * through element.style, which the policy allows). Every value from the cluster reaches the
 * page as text (textContent), never as markup.
 *
 * Each page is an object {el, refresh, every, title}: the router mounts `el` and calls
 * `refresh()` at once, then every `every` ms (1000 by default) while the page is shown.
 * Tables update their rows in place (keyed by id), so a row being clicked is not replaced
 * under the pointer by the next refresh.
 */
"use strict";

(() => {
  // ---------------------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------------------
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k === "data") {
          for (const [dk, dv] of Object.entries(v)) {
            if (dv !== null && dv !== undefined) el.dataset[dk] = String(dv);
          }
        } else if (k.startsWith("on") && typeof v === "function") {
          el.addEventListener(k.slice(2), v);
        } else if (v === true) el.setAttribute(k, "");
        else el.setAttribute(k, String(v));
      }
    }
    add(el, kids);
    return el;
  }

  function add(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  const byId = (id) => document.getElementById(id);

  function setText(el, s) {
    s = s === null || s === undefined ? "–" : String(s);
    if (el.textContent !== s) el.textContent = s;
  }

  /* Put `v` (text or a node) into `box`, only if it differs from what is there: a refresh
   * that changes nothing touches nothing. */
  function put(box, v) {
    if (v instanceof Node) {
      const sig = "n:" + (v.outerHTML === undefined ? v.textContent : v.outerHTML);
      if (box._sig !== sig) {
        box.replaceChildren(v);
        box._sig = sig;
      }
    } else {
      const s = v === null || v === undefined || v === "" ? "–" : String(v);
      if (box._sig !== "t:" + s) {
        box.textContent = s;
        box._sig = "t:" + s;
      }
    }
  }

  function debounce(fn, ms) {
    let t = null;
    return (...a) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...a), ms);
    };
  }

  // ---------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------
  const fmt = {
    bytes(n) {
      if (n === null || n === undefined || Number.isNaN(Number(n))) return "–";
      const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
      let x = Number(n);
      let i = 0;
      while (Math.abs(x) >= 1024 && i < units.length - 1) {
        x /= 1024;
        i++;
      }
      const digits = i === 0 ? 0 : x < 10 ? 2 : x < 100 ? 1 : 0;
      return `${x.toFixed(digits)} ${units[i]}`;
    },
    num(n) {
      if (n === null || n === undefined) return "–";
      const x = Number(n);
      return Number.isInteger(x) ? String(x) : String(+x.toFixed(2));
    },
    pct(p) {
      if (p === null || p === undefined) return "–";
      return `${Number(p).toFixed(p < 10 ? 1 : 0)}%`;
    },
    dur(ms) {
      if (ms === null || ms === undefined || ms < 0 || Number.isNaN(ms)) return "–";
      if (ms === 0) return "< 1 ms"; // the records keep milliseconds
      if (ms < 1) return `${ms.toFixed(2)} ms`;
      if (ms < 10) return `${ms.toFixed(1)} ms`;
      if (ms < 1000) return `${Math.round(ms)} ms`;
      const s = ms / 1000;
      if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
      const m = Math.floor(s / 60);
      if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
      return `${Math.floor(m / 60)}h ${m % 60}m`;
    },
    time(ms) {
      if (!ms) return "–";
      const d = new Date(ms);
      const t = d.toLocaleTimeString([], { hour12: false });
      return d.toDateString() === new Date().toDateString() ? t : `${d.toLocaleDateString()} ${t}`;
    },
  };

  const short = (id, n = 8) => (id ? String(id).slice(0, n) : "–");

  function idSpan(id, n = 8) {
    return h("span", { class: "mono", title: id || null }, short(id, n));
  }

  function idLink(id, href, n = 8) {
    if (!id) return "–";
    return h("a", { class: "mono", href, title: id }, short(id, n));
  }

  const STATE_CLASS = {
    FINISHED: "ok", ALIVE: "ok", SUCCEEDED: "ok", CREATED: "ok",
    RUNNING: "run", SUBMITTED_TO_WORKER: "run",
    PENDING_ARGS_AVAIL: "wait", PENDING_NODE_ASSIGNMENT: "wait", PENDING: "wait",
    PENDING_CREATION: "wait", DEPENDENCIES_UNREADY: "wait", RESTARTING: "wait",
    RESCHEDULING: "wait",
    FAILED: "bad", STOPPED: "bad",
  };

  function badge(state, cls) {
    const c = cls === undefined ? STATE_CLASS[state] || "" : cls;
    return h("span", { class: `badge ${c}`.trim(), data: { state: state || "" } }, state || "–");
  }

  const TASK_STATES = ["PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "RUNNING", "FINISHED",
    "FAILED"];
  const ACTOR_STATES = ["DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"];

  /* A usage bar: label, "used / total" text, and a bar filled by used/total. */
  function meter(label, used, total, text, extra) {
    const frac = total > 0 ? Math.min(1, Math.max(0, used / total)) : 0;
    const fill = h("div", { class: `fill${frac > 0.9 ? " bad" : frac > 0.75 ? " warn" : ""}` });
    fill.style.width = `${(frac * 100).toFixed(1)}%`;
    return h("div", { class: "meter", data: { frac: frac.toFixed(3), ...(extra || {}) } },
      h("div", { class: "meter-head" },
        label ? h("span", { class: "k" }, label) : null,
        h("span", { class: "v" }, text)),
      h("div", { class: "bar" }, fill));
  }

  // ---------------------------------------------------------------------------------------
  // The JSON API
  // ---------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, opts = {}) {
    const method = opts.method || "GET";
    let r;
    try {
      r = await fetch(path, {
        method, credentials: "same-origin", cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch (e) {
      throw new ApiError(0, "Cannot reach the dashboard: is the cluster still running?");
    }
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) {
      if (r.status === 401 && method === "GET") {
        // Only a dashboard that needs the token says 401 to a read: go and get one.
        window.location.assign("/login");
      }
      throw new ApiError(r.status, (body && body.error) || `HTTP ${r.status}`);
    }
    return body;
  }

  // ---------------------------------------------------------------------------------------
  // A table whose rows are updated in place, keyed by id
  // ---------------------------------------------------------------------------------------
  function dataTable({ id, columns, key, rowData, onRowClick, empty }) {
    const tbody = h("tbody");
    const table = h("table", { class: "data", id },
      h("thead", null, h("tr", null, columns.map((c) =>
        h("th", { class: c.cls || null, title: c.help || null }, c.title)))),
      tbody);
    const emptyRow = h("tr", { class: "empty-row" },
      h("td", { class: "empty", colspan: columns.length }, empty || "Nothing to show."));
    const rows = new Map();
    tbody.appendChild(emptyRow);

    function update(items) {
      if (!items.length) {
        rows.clear();
        if (tbody.firstChild !== emptyRow || tbody.children.length !== 1) {
          tbody.replaceChildren(emptyRow);
        }
        return;
      }
      if (emptyRow.parentNode) emptyRow.remove();
      const seen = new Set();
      items.forEach((item, i) => {
        const k = key(item);
        seen.add(k);
        let tr = rows.get(k);
        if (!tr) {
          tr = h("tr", null, columns.map((c) => h("td", { class: c.cls || null })));
          if (onRowClick) {
            tr.classList.add("clickable");
            tr.addEventListener("click", (ev) => {
              if (ev.target.closest("a, button, input, select, label")) return;
              onRowClick(tr._item, ev);
            });
          }
          rows.set(k, tr);
        }
        tr._item = item;
        const d = rowData ? rowData(item) : {};
        for (const [dk, dv] of Object.entries(d)) {
          const s = dv === null || dv === undefined ? "" : String(dv);
          if (tr.dataset[dk] !== s) tr.dataset[dk] = s;
        }
        columns.forEach((c, j) => put(tr.children[j], c.value(item)));
        if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
      });
      for (const [k, tr] of rows) {
        if (!seen.has(k)) {
          tr.remove();
          rows.delete(k);
        }
      }
    }

    return { el: h("div", { class: "table-wrap" }, table), table, update };
  }

  function pageHead(title, ...rest) {
    return h("div", { class: "page-head" }, h("h1", null, title), ...rest);
  }

  function field(label, input) {
    return h("label", { class: "field" }, label, input);
  }

  function card(label, bigId, subs, href) {
    return h(href ? "a" : "div", { class: "panel card", href: href || null },
      h("div", { class: "label" }, label),
      h("div", { class: "big num", id: bigId }, "–"),
      h("div", { class: "sub" }, subs.map(([t, id]) => h("span", null, `${t} `, h("b", { id }, "–")))));
  }

  function nodeLabel(n) {
    return h("span", null,
      h("span", { class: "mono" }, n.node_ip || n.ip || "?"), " ",
      n.is_head_node ? badge("head", "head") : null, " ",
      h("span", { class: "muted mono small", title: n.node_id }, short(n.node_id)));
  }

  const logsHref = (q) => `#/logs?${new URLSearchParams(q)}`;

  // ---------------------------------------------------------------------------------------
  // Overview
  // ---------------------------------------------------------------------------------------
  function overviewPage() {
    const resources = h("div", { id: "cluster-resources" });
    const taskStates = h("div", { id: "tasks-by-state" });
    const actorStates = h("div", { id: "actors-by-state" });
    const nodes = dataTable({
      id: "overview-nodes",
      key: (n) => n.node_id,
      rowData: (n) => ({ nodeId: n.node_id, state: n.state }),
      empty: "No nodes.",
      columns: [
        { title: "Node", value: nodeLabel },
        { title: "State", value: (n) => badge(n.state, n.state === "ALIVE" ? "ok" : "bad") },
        {
          title: "CPU slots", value: (n) => {
            const t = n.resources_total.CPU || 0;
            const used = t - (n.resources_available.CPU || 0);
            return meter(null, used, t, `${fmt.num(used)} / ${fmt.num(t)}`);
          },
        },
        {
          title: "CPU use", value: (n) => (n.machine
            ? meter(null, n.machine.cpu_percent, 100,
              `${fmt.pct(n.machine.cpu_percent)} of ${n.machine.num_cpus}`)
            : "–"),
        },
        {
          title: "Memory", value: (n) => (n.machine
            ? meter(null, n.machine.mem_used, n.machine.mem_total,
              `${fmt.bytes(n.machine.mem_used)} / ${fmt.bytes(n.machine.mem_total)}`)
            : "–"),
        },
        {
          title: "Object store", value: (n) => (n.object_store
            ? meter(null, n.object_store.used, n.object_store.capacity,
              `${fmt.bytes(n.object_store.used)} / ${fmt.bytes(n.object_store.capacity)}`)
            : "–"),
        },
        {
          title: "", value: (n) => h("a", {
            class: "node-logs-link", href: logsHref({ node_id: n.node_id }),
          }, "logs"),
        },
      ],
    });

    const el = h("div", { id: "page-overview" },
      pageHead("Cluster overview", h("span", { class: "spacer" }),
        h("span", { class: "muted small", id: "overview-time" })),
      h("div", { class: "grid cards" },
        card("Nodes alive", "nodes-alive", [["dead", "nodes-dead"]], "#/nodes"),
        card("Tasks running", "tasks-running", [["pending", "tasks-pending"]],
          "#/tasks?state=RUNNING"),
        card("Tasks finished", "tasks-finished", [["failed", "tasks-failed"]],
          "#/tasks?state=FINISHED"),
        card("Actors alive", "actors-alive", [["all", "actors-total"]], "#/actors"),
        card("Jobs running", "jobs-running", [["finished", "jobs-finished"]], "#/jobs"),
        card("Objects stored", "objects-num", [["using", "store-used"]], "#/objects")),
      h("div", { class: "grid two" },
        h("div", { class: "panel" }, h("h3", null, "Cluster resources"), resources),
        h("div", { class: "grid" },
          h("div", { class: "panel" }, h("h3", null, "Tasks by state"), taskStates),
          h("div", { class: "panel" }, h("h3", null, "Actors by state"), actorStates))),
      h("div", { class: "panel flush" }, h("h2", null, "Nodes"), nodes.el));

    async function refresh() {
      const s = await api("/api/cluster");
      setText(byId("nodes-alive"), s.nodes.alive);
      setText(byId("nodes-dead"), s.nodes.dead);
      setText(byId("tasks-running"), s.tasks_running);
      setText(byId("tasks-pending"), s.tasks_pending);
      setText(byId("tasks-finished"), s.tasks.FINISHED || 0);
      setText(byId("tasks-failed"), s.tasks.FAILED || 0);
      const actorTotal = Object.values(s.actors).reduce((a, b) => a + b, 0);
      setText(byId("actors-alive"), s.actors.ALIVE || 0);
      setText(byId("actors-total"), actorTotal);
      setText(byId("jobs-running"), s.jobs.running);
      setText(byId("jobs-finished"), s.jobs.finished);
      setText(byId("objects-num"), s.object_store.num_objects);
      setText(byId("store-used"), fmt.bytes(s.object_store.used));
      setText(byId("overview-time"), `cluster time ${fmt.time(s.time * 1000)}`);

      const rt = s.resources_total;
      const ra = s.resources_available;
      const meters = [];
      const logical = (k, label) => {
        const used = rt[k] - (ra[k] || 0);
        meters.push(meter(label, used, rt[k], `${fmt.num(used)} / ${fmt.num(rt[k])} in use`,
          { resource: k }));
      };
      if (rt.CPU) logical("CPU", "CPU");
      if (rt.GPU) logical("GPU", "GPU");
      let memUsed = 0;
      let memTotal = 0;
      for (const n of s.node_list) {
        if (n.state === "ALIVE" && n.machine) {
          memUsed += n.machine.mem_used;
          memTotal += n.machine.mem_total;
        }
      }
      meters.push(meter("Memory (machines)", memUsed, memTotal,
        `${fmt.bytes(memUsed)} / ${fmt.bytes(memTotal)}`, { resource: "memory" }));
      const os = s.object_store;
      meters.push(meter("Object store", os.used, os.capacity,
        `${fmt.bytes(os.used)} / ${fmt.bytes(os.capacity)}` +
        (os.spilled ? ` · ${fmt.bytes(os.spilled)} spilled` : ""), { resource: "object_store" }));
      for (const k of Object.keys(rt).sort()) {
        if (["CPU", "GPU", "memory", "object_store_memory"].includes(k)) continue;
        if (k.startsWith("accelerator_type")) continue;
        logical(k, k);
      }
      put(resources, h("div", null, meters));

      put(taskStates, h("div", null, Object.entries(s.tasks).map(([st, n]) =>
        h("a", { class: "kv-row", href: `#/tasks?state=${st}`, data: { state: st } },
          h("span", { class: "k" }, badge(st)), h("span", { class: "v" }, n)))));
      const actorRows = Object.entries(s.actors);
      put(actorStates, actorRows.length
        ? h("div", null, actorRows.map(([st, n]) =>
          h("a", { class: "kv-row", href: `#/actors?state=${st}`, data: { state: st } },
            h("span", { class: "k" }, badge(st)), h("span", { class: "v" }, n))))
        : h("div", { class: "muted" }, "No actors."));
      nodes.update(s.node_list);
    }

    return { el, refresh, title: "Overview" };
  }

  // ---------------------------------------------------------------------------------------
  // Nodes
  // ---------------------------------------------------------------------------------------
  function nodesPage() {
    const table = dataTable({
      id: "nodes-table",
      key: (n) => n.node_id,
      rowData: (n) => ({ nodeId: n.node_id, state: n.state, workers: n.workers.length }),
      empty: "No nodes.",
      columns: [
        { title: "Node", value: nodeLabel },
        { title: "State", value: (n) => badge(n.state, n.state === "ALIVE" ? "ok" : "bad") },
        {
          title: "CPU use", value: (n) => (n.machine
            ? meter(null, n.machine.cpu_percent, 100,
              `${fmt.pct(n.machine.cpu_percent)} of ${n.machine.num_cpus} cores`)
            : "–"),
        },
        {
          title: "Load", cls: "num", help: "load average over 1, 5 and 15 minutes",
          value: (n) => (n.machine && n.machine.load_avg
            ? n.machine.load_avg.map((x) => x.toFixed(2)).join(" ") : "–"),
        },
        {
          title: "Memory", value: (n) => (n.machine
            ? meter(null, n.machine.mem_used, n.machine.mem_total,
              `${fmt.bytes(n.machine.mem_used)} / ${fmt.bytes(n.machine.mem_total)}`)
            : "–"),
        },
        {
          title: "Disk", value: (n) => (n.machine
            ? meter(null, n.machine.disk_used, n.machine.disk_total,
              `${fmt.bytes(n.machine.disk_used)} / ${fmt.bytes(n.machine.disk_total)}`)
            : "–"),
        },
        {
          title: "Object store", value: (n) => (n.object_store
            ? meter(null, n.object_store.used, n.object_store.capacity,
              `${fmt.bytes(n.object_store.used)} / ${fmt.bytes(n.object_store.capacity)}` +
              ` · ${n.object_store.num_objects} obj`)
            : "–"),
        },
        {
          title: "Resources", value: (n) => h("span", { class: "small" },
            Object.keys(n.resources_total).filter((k) => !k.startsWith("node:") &&
              !k.includes("_group_") && !["memory", "object_store_memory"].includes(k))
              .sort().map((k) => {
                const t = n.resources_total[k];
                const used = t - (n.resources_available[k] || 0);
                return h("div", null, h("span", { class: "muted" }, `${k} `),
                  `${fmt.num(used)}/${fmt.num(t)}`);
              })),
        },
        { title: "Workers", cls: "num right", value: (n) => String(n.workers.length) },
        {
          title: "Pending leases", cls: "num right",
          help: "worker requests waiting for resources on this node",
          value: (n) => String(n.pending_leases || 0),
        },
        {
          title: "", value: (n) => h("a", {
            class: "node-logs-link", href: logsHref({ node_id: n.node_id }),
          }, "logs"),
        },
      ],
    });
    const el = h("div", { id: "page-nodes" },
      pageHead("Nodes", h("span", { class: "count-note", id: "nodes-count" })),
      h("div", { class: "panel flush" }, table.el));

    async function refresh() {
      const { nodes } = await api("/api/nodes");
      const alive = nodes.filter((n) => n.state === "ALIVE").length;
      setText(byId("nodes-count"), `${alive} alive · ${nodes.length - alive} dead`);
      table.update(nodes);
    }
    return { el, refresh, title: "Nodes" };
  }

  // ---------------------------------------------------------------------------------------
  // Tasks
  // ---------------------------------------------------------------------------------------
  const SHOWN = 500;

  function taskDuration(t) {
    if (!t.start_time_ms) return "–";
    if (t.end_time_ms) return fmt.dur(t.end_time_ms - t.start_time_ms);
    if (t.state === "RUNNING") return `${fmt.dur(Date.now() - t.start_time_ms)}…`;
    return "–";
  }

  function tasksPage({ query }) {
    const f = {
      state: (query.get("state") || "").toUpperCase(),
      name: query.get("name") || "",
      job_id: query.get("job_id") || "",
      actor_id: query.get("actor_id") || "",
      node_id: query.get("node_id") || "",
    };
    const stateSel = h("select", { id: "filter-state" }, h("option", { value: "" }, "All states"),
      TASK_STATES.map((s) => h("option", { value: s }, s)));
    stateSel.value = f.state;
    const nameIn = h("input", {
      type: "text", id: "filter-name", placeholder: "function or method", spellcheck: "false",
    });
    nameIn.value = f.name;
    const jobIn = h("input", {
      type: "text", id: "filter-job", placeholder: "job id, e.g. 00000001", spellcheck: "false",
    });
    jobIn.value = f.job_id;
    const chips = h("span", { id: "filter-chips" });
    const count = h("span", { class: "count-note", id: "tasks-count" });

    const table = dataTable({
      id: "tasks-table",
      key: (t) => `${t.task_id}:${t.attempt_number}`,
      rowData: (t) => ({ taskId: t.task_id, state: t.state, name: t.name }),
      onRowClick: (t) => { window.location.hash = `#/tasks/${t.task_id}`; },
      empty: "No tasks match.",
      columns: [
        { title: "Task", value: (t) => idLink(t.task_id, `#/tasks/${t.task_id}`, 12) },
        { title: "Name", value: (t) => h("span", { class: "mono" }, t.name || "–") },
        { title: "State", value: (t) => badge(t.state) },
        { title: "Type", cls: "small", value: (t) => t.type },
        { title: "Job", value: (t) => idSpan(t.job_id) },
        { title: "Actor", value: (t) => idLink(t.actor_id, `#/actors/${t.actor_id}`) },
        { title: "Node", value: (t) => idSpan(t.node_id) },
        { title: "Worker", value: (t) => idSpan(t.worker_id) },
        { title: "Started", cls: "num", value: (t) => fmt.time(t.start_time_ms) },
        { title: "Duration", cls: "num right", value: taskDuration },
        { title: "Attempt", cls: "num right", value: (t) => String(t.attempt_number || 0) },
      ],
    });

    const page = { title: "Tasks" };
    function changed() {
      f.state = stateSel.value;
      f.name = nameIn.value.trim();
      f.job_id = jobIn.value.trim();
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
      const qs = q.toString();
      history.replaceState(null, "", `#/tasks${qs ? `?${qs}` : ""}`);
      drawChips();
      if (page.kick) page.kick();
    }
    function drawChips() {
      const list = [];
      for (const k of ["actor_id", "node_id"]) {
        if (!f[k]) continue;
        list.push(h("span", { class: "badge head", data: { filter: k } },
          `${k.replace("_id", "")} ${short(f[k])} `,
          h("button", {
            type: "button", class: "linkish", title: "remove this filter",
            onclick: () => { f[k] = ""; changed(); },
          }, "×")));
      }
      chips.replaceChildren(...list);
    }
    drawChips();
    stateSel.addEventListener("change", changed);
    nameIn.addEventListener("input", debounce(changed, 200));
    jobIn.addEventListener("input", debounce(changed, 200));
    const clear = h("button", {
      type: "button", id: "filter-clear", onclick: () => {
        stateSel.value = "";
        nameIn.value = "";
        jobIn.value = "";
        f.actor_id = "";
        f.node_id = "";
        changed();
      },
    }, "Clear");

    page.el = h("div", { id: "page-tasks" },
      pageHead("Tasks", count),
      h("div", { class: "filters" },
        field("State", stateSel), field("Name contains", nameIn), field("Job", jobIn),
        clear, chips),
      h("div", { class: "panel flush" }, table.el));

    page.refresh = async () => {
      const q = new URLSearchParams();
      if (f.state) q.set("state", f.state);
      for (const k of ["job_id", "actor_id", "node_id"]) if (f[k]) q.set(k, f[k].toLowerCase());
      q.set("limit", "1000");
      const body = await api(`/api/tasks?${q}`);
      let rows = body.tasks;
      if (f.name) {
        const n = f.name.toLowerCase();
        rows = rows.filter((t) => (t.name || "").toLowerCase().includes(n));
      }
      const shown = rows.slice(0, SHOWN);
      table.update(shown);
      const filtered = f.state || f.name || f.job_id || f.actor_id || f.node_id;
      setText(count, filtered
        ? `${rows.length}${body.total > body.tasks.length ? "+" : ""} matching` +
          (shown.length < rows.length ? ` (newest ${shown.length} shown)` : "")
        : `${body.total} tasks` +
          (shown.length < body.total ? ` (newest ${shown.length} shown)` : ""));
    };
    return page;
  }

  function props(id, entries) {
    return h("dl", { class: "props", id },
      entries.filter(Boolean).map(([k, v, name]) => [
        h("dt", null, k),
        h("dd", { data: { field: name || k.toLowerCase().replace(/ /g, "_") } },
          v === null || v === undefined || v === "" ? "–" : v),
      ]));
  }

  function notFound(what, msg) {
    return h("div", { class: "panel", id: "not-found" },
      h("h2", null, `${what} not found`), h("p", { class: "muted" }, msg));
  }

  function taskPage({ args }) {
    const tid = args[0];
    const body = h("div", null, h("p", { class: "muted" }, "Loading…"));
    const el = h("div", { id: "page-task", data: { taskId: tid } },
      h("div", { class: "crumbs" }, h("a", { href: "#/tasks" }, "Tasks"), " / ",
        h("span", { class: "mono" }, tid)),
      body);
    let sig = null;

    async function refresh() {
      let task;
      try {
        ({ task } = await api(`/api/tasks/${tid}`));
      } catch (e) {
        if (e.status === 404 || e.status === 400) {
          if (sig !== "missing") body.replaceChildren(notFound("Task", e.message));
          sig = "missing";
          return;
        }
        throw e;
      }
      const s = JSON.stringify(task);
      if (s === sig) return;
      sig = s;
      body.replaceChildren(renderTask(task));
    }
    return { el, refresh, title: `Task ${short(tid)}` };
  }

  function renderTask(t) {
    const actions = h("div", { class: "actions" },
      t.worker_id && t.node_id
        ? h("a", {
          class: "button", id: "task-worker-logs",
          href: logsHref({ node_id: t.node_id, worker_id: t.worker_id }),
        }, "Worker log")
        : h("span", { class: "muted" }, "Not placed on a worker yet: no log."),
      t.actor_id ? h("a", { class: "button", id: "task-actor-link", href: `#/actors/${t.actor_id}` },
        "Actor") : null,
      t.job_id ? h("a", { class: "button", href: `#/tasks?job_id=${t.job_id}` },
        "Tasks of this job") : null);
    const parts = [
      h("div", { class: "panel" },
        h("div", { class: "page-head" },
          h("h1", { id: "task-name", class: "mono" }, t.name || "(unnamed)"),
          h("span", { id: "task-state" }, badge(t.state))),
        props("task-detail", [
          ["Task ID", h("span", { class: "mono" }, t.task_id), "task_id"],
          ["State", t.state],
          ["Type", t.type],
          ["Function", h("span", { class: "mono" }, t.func_or_class_name || t.name || "–"),
            "func_or_class_name"],
          ["Job", t.job_id, "job_id"],
          ["Actor", t.actor_id ? h("a", { class: "mono", href: `#/actors/${t.actor_id}` },
            t.actor_id) : null, "actor_id"],
          ["Node", t.node_id ? h("span", { class: "mono" }, t.node_id) : null, "node_id"],
          ["Worker", t.worker_id ? h("span", { class: "mono" }, t.worker_id) : null,
            "worker_id"],
          ["Attempt", String(t.attempt_number || 0), "attempt_number"],
          ["Parent task", t.parent_task_id
            ? h("a", { class: "mono", href: `#/tasks/${t.parent_task_id}` }, t.parent_task_id)
            : null, "parent_task_id"],
          ["Submitted", fmt.time(t.creation_time_ms), "creation_time"],
          ["Started", fmt.time(t.start_time_ms), "start_time"],
          ["Ended", fmt.time(t.end_time_ms), "end_time"],
          ["Duration", taskDuration(t), "duration"],
          t.error_type ? ["Error type", t.error_type, "error_type"] : null,
        ]),
        actions),
    ];
    if (t.error_message || t.error_type) {
      parts.push(h("div", { class: "panel", id: "task-error-panel" },
        h("h2", null, "Error"),
        h("div", { class: "error-type", id: "task-error-type" }, t.error_type || "error"),
        h("pre", { class: "error", id: "task-error" }, t.error_message || "(no message)")));
    }
    return h("div", null, parts);
  }

  // ---------------------------------------------------------------------------------------
  // Actors
  // ---------------------------------------------------------------------------------------
  function restarts(a) {
    const max = a.max_restarts === -1 ? "∞" : a.max_restarts;
    return `${a.num_restarts || 0} / ${max === undefined || max === null ? 0 : max}`;
  }

  function callsText(c) {
    if (!c || !c.total) return "0";
    const parts = [];
    if (c.RUNNING) parts.push(`${c.RUNNING} running`);
    if (c.FAILED) parts.push(`${c.FAILED} failed`);
    return `${c.total}${parts.length ? ` (${parts.join(", ")})` : ""}`;
  }

  function actorsPage({ query }) {
    const stateSel = h("select", { id: "filter-actor-state" },
      h("option", { value: "" }, "All states"), ACTOR_STATES.map((s) => h("option", { value: s }, s)));
    stateSel.value = (query.get("state") || "").toUpperCase();
    const textIn = h("input", {
      type: "text", id: "filter-actor", placeholder: "class or name", spellcheck: "false",
    });
    const count = h("span", { class: "count-note", id: "actors-count" });
    const page = { title: "Actors" };
    const table = dataTable({
      id: "actors-table",
      key: (a) => a.actor_id,
      rowData: (a) => ({ actorId: a.actor_id, state: a.state, className: a.class_name }),
      onRowClick: (a) => { window.location.hash = `#/actors/${a.actor_id}`; },
      empty: "No actors.",
      columns: [
        { title: "Actor", value: (a) => idLink(a.actor_id, `#/actors/${a.actor_id}`, 12) },
        { title: "Class", value: (a) => h("span", { class: "mono" }, a.class_name || "–") },
        { title: "Name", value: (a) => a.name || "–" },
        { title: "State", value: (a) => badge(a.state) },
        { title: "Restarts", cls: "num", value: restarts },
        { title: "Calls", cls: "num", value: (a) => callsText(a.calls) },
        { title: "PID", cls: "num", value: (a) => (a.pid ? String(a.pid) : "–") },
        { title: "Node", value: (a) => idSpan(a.node_id) },
        { title: "Job", value: (a) => idSpan(a.job_id) },
      ],
    });
    const changed = () => {
      const st = stateSel.value;
      history.replaceState(null, "", `#/actors${st ? `?state=${st}` : ""}`);
      if (page.kick) page.kick();
    };
    stateSel.addEventListener("change", changed);
    textIn.addEventListener("input", debounce(changed, 200));
    page.el = h("div", { id: "page-actors" },
      pageHead("Actors", count),
      h("div", { class: "filters" }, field("State", stateSel), field("Class or name", textIn)),
      h("div", { class: "panel flush" }, table.el));
    page.refresh = async () => {
      const q = stateSel.value ? `?state=${stateSel.value}` : "";
      const { actors } = await api(`/api/actors${q}`);
      let rows = actors.slice().reverse(); // newest first
      const text = textIn.value.trim().toLowerCase();
      if (text) {
        rows = rows.filter((a) => `${a.class_name || ""} ${a.name || ""}`.toLowerCase()
          .includes(text));
      }
      table.update(rows);
      setText(count, `${rows.length} actor${rows.length === 1 ? "" : "s"}`);
    };
    return page;
  }

  function actorPage({ args }) {
    const aid = args[0];
    const page = { title: `Actor ${short(aid)}` };
    const info = h("div", null, h("p", { class: "muted" }, "Loading…"));
    const message = h("div", { class: "message", id: "actor-kill-message", hidden: true });
    const restartBox = h("input", { type: "checkbox", id: "actor-kill-restart" });
    const killBtn = h("button", { type: "button", class: "danger", id: "actor-kill" }, "Kill actor");
    const confirmBox = h("span", { class: "actions", id: "actor-kill-ask", hidden: true },
      h("span", null, "Kill this actor? Its pending calls fail."),
      h("button", { type: "button", class: "danger solid", id: "actor-kill-confirm" }, "Kill"),
      h("button", { type: "button", id: "actor-kill-cancel" }, "Cancel"));
    const logsLink = h("a", { class: "button", id: "actor-logs-link", hidden: true }, "Open in Logs");
    const callsLink = h("a", { class: "button", id: "actor-calls-link", href: `#/tasks?actor_id=${aid}` },
      "Calls");
    const viewer = logViewer({ actor_id: aid }, page);

    function say(cls, ...kids) {
      message.className = `message ${cls}`;
      message.replaceChildren(...kids.map((k) => (k instanceof Node ? k : document.createTextNode(k))));
      message.hidden = false;
    }

    killBtn.addEventListener("click", () => {
      confirmBox.hidden = false;
      killBtn.hidden = true;
    });
    byIdIn(confirmBox, "actor-kill-cancel").addEventListener("click", () => {
      confirmBox.hidden = true;
      killBtn.hidden = false;
    });
    byIdIn(confirmBox, "actor-kill-confirm").addEventListener("click", async () => {
      confirmBox.hidden = true;
      killBtn.hidden = false;
      killBtn.disabled = true;
      const q = restartBox.checked ? "?no_restart=false" : "";
      let r = null;
      let body = null;
      try {
        r = await fetch(`/api/actors/${aid}/kill${q}`, {
          method: "POST", credentials: "same-origin", headers: { Accept: "application/json" },
        });
        body = await r.json().catch(() => null);
      } catch (e) {
        say("bad", "Cannot reach the dashboard.");
      }
      killBtn.disabled = false;
      if (!r) return;
      if (r.status === 401) {
        say("bad", "Killing an actor needs the cluster token. ",
          h("a", { href: "/login", id: "actor-kill-login" }, "Log in"),
          " with it, then come back to this page.");
      } else if (!r.ok) {
        say("bad", `Refused: ${(body && body.error) || `HTTP ${r.status}`}`);
      } else {
        say("ok", "Kill requested: the actor stops in a moment.");
        if (page.kick) page.kick();
      }
    });

    page.el = h("div", { id: "page-actor", data: { actorId: aid } },
      h("div", { class: "crumbs" }, h("a", { href: "#/actors" }, "Actors"), " / ",
        h("span", { class: "mono" }, aid)),
      h("div", { class: "panel" }, info,
        h("div", { class: "actions" }, killBtn, confirmBox,
          h("label", { class: "check", title: "if its max_restarts allows" }, restartBox,
            "let it restart"),
          callsLink, logsLink),
        message),
      h("div", { class: "panel" }, h("h2", null, "Log"), viewer.el));

    let sig = null;
    async function refreshInfo() {
      let actor;
      try {
        ({ actor } = await api(`/api/actors/${aid}`));
      } catch (e) {
        if (e.status === 404 || e.status === 400) {
          if (sig !== "missing") info.replaceChildren(notFound("Actor", e.message));
          sig = "missing";
          killBtn.disabled = true;
          return;
        }
        throw e;
      }
      killBtn.disabled = actor.state === "DEAD";
      if (actor.node_id && actor.pid) {
        logsLink.href = logsHref({ node_id: actor.node_id, pid: actor.pid });
        logsLink.hidden = false;
      }
      const s = JSON.stringify(actor);
      if (s === sig) return;
      sig = s;
      let death = actor.death_cause;
      if (death && typeof death !== "string") death = JSON.stringify(death, null, 1);
      info.replaceChildren(
        h("div", { class: "page-head" },
          h("h1", { class: "mono", id: "actor-class" }, actor.class_name || "actor"),
          actor.name ? h("span", { class: "muted", id: "actor-name" }, `“${actor.name}”`) : null,
          h("span", { id: "actor-state" }, badge(actor.state))),
        props("actor-detail", [
          ["Actor ID", h("span", { class: "mono" }, actor.actor_id), "actor_id"],
          ["State", actor.state],
          ["Name", actor.name],
          ["Namespace", actor.namespace],
          ["Restarts", restarts(actor), "restarts"],
          ["Calls", callsText(actor.calls), "calls"],
          ["PID", actor.pid ? String(actor.pid) : null, "pid"],
          ["Node", actor.node_id ? h("span", { class: "mono" }, actor.node_id) : null, "node_id"],
          ["Worker", actor.worker_id ? h("span", { class: "mono" }, actor.worker_id) : null,
            "worker_id"],
          ["Job", actor.job_id, "job_id"],
          ["Detached", actor.is_detached ? "yes" : "no", "is_detached"],
          death ? ["Death cause", h("pre", { class: "error", id: "actor-death-cause" }, death),
            "death_cause"] : null,
        ]));
    }

    page.refresh = async () => {
      await Promise.all([refreshInfo(), viewer.refresh()]);
    };
    return page;
  }

  function byIdIn(root, id) {
    return root.querySelector(`#${id}`);
  }

  // ---------------------------------------------------------------------------------------
  // Logs: a viewer (tail, then follow by offset) and the list per node
  // ---------------------------------------------------------------------------------------
  const LOG_KEEP = 2_000_000; // characters kept in the page when following a long log

  function logViewer(params, page, { follow = true, tail = 1000 } = {}) {
    const name = h("span", { class: "name", id: "log-name" }, "…");
    const size = h("span", { class: "muted", id: "log-size" });
    const followBox = h("input", { type: "checkbox", id: "log-follow" });
    followBox.checked = follow;
    const wrapBox = h("input", { type: "checkbox", id: "log-wrap" });
    const pre = h("pre", { class: "log", id: "log-text" });
    const err = h("div", { class: "message bad", id: "log-error", hidden: true });
    const end = h("button", { type: "button", id: "log-end" }, "Jump to end");
    end.addEventListener("click", () => { pre.scrollTop = pre.scrollHeight; });
    followBox.addEventListener("change", () => { if (followBox.checked && page.kick) page.kick(); });
    wrapBox.addEventListener("change", () => pre.classList.toggle("wrap", wrapBox.checked));
    const el = h("div", { class: "log-view" },
      h("div", { class: "log-bar" }, name, size, h("span", { class: "spacer" }),
        h("label", { class: "check", title: "poll every second and append what was written" },
          followBox, "Follow"),
        h("label", { class: "check" }, wrapBox, "Wrap lines"), end),
      err, pre);
    let offset = null;
    let shownName = null;

    async function refresh() {
      if (offset !== null && !followBox.checked) return;
      const q = new URLSearchParams(params);
      if (offset === null) q.set("tail", String(tail));
      else q.set("offset", String(offset));
      let r;
      try {
        r = await api(`/api/logs/read?${q}`);
      } catch (e) {
        if (e.status && e.status !== 401) {
          setText(err, `Cannot read this log: ${e.message}`);
          err.hidden = false;
          return;
        }
        throw e;
      }
      err.hidden = true;
      if (offset !== null && (r.size < offset || r.name !== shownName)) {
        // Truncated, or another file (an actor restarted in a new worker): start again
        // from its tail.
        offset = null;
        return refresh();
      }
      shownName = r.name;
      setText(name, r.name);
      setText(size, fmt.bytes(r.size));
      el.dataset.offset = r.offset;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      if (offset === null) {
        pre.textContent = r.data;
        pre.scrollTop = pre.scrollHeight;
      } else if (r.data) {
        pre.appendChild(document.createTextNode(r.data));
        if (pre.textContent.length > LOG_KEEP) {
          const text = pre.textContent;
          pre.textContent = text.slice(text.indexOf("\n", text.length - LOG_KEEP / 2) + 1);
        }
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
      offset = r.offset;
    }
    return { el, refresh };
  }

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
  // Objects (as `shoal memory`)
  // ---------------------------------------------------------------------------------------
  function objectsPage() {
    const stores = h("div", { id: "object-store-nodes" });
    const refSel = h("select", { id: "filter-ref-type" }, h("option", { value: "" }, "All references"));
    const textIn = h("input", {
      type: "text", id: "filter-object", placeholder: "object id or call site", spellcheck: "false",
    });
    const page = { title: "Objects" };
    const kick = () => page.kick && page.kick();
    refSel.addEventListener("change", kick);
    textIn.addEventListener("input", debounce(kick, 200));
    const table = dataTable({
      id: "objects-table",
      key: (o) => `${o.object_id}:${o.pid}:${o.reference_type}`,
      rowData: (o) => ({ objectId: o.object_id, referenceType: o.reference_type }),
      empty: "No object references.",
      columns: [
        { title: "Object", value: (o) => idSpan(o.object_id, 16) },
        { title: "Size", cls: "num right", value: (o) => (o.object_size >= 0 ? fmt.bytes(o.object_size) : "?") },
        { title: "Reference", cls: "small", value: (o) => o.reference_type },
        { title: "Call site", value: (o) => h("span", { class: "mono" }, o.call_site || "–") },
        { title: "Holder", value: (o) => `${o.type || "?"} ${o.pid || ""}` },
        { title: "Node", value: (o) => h("span", { class: "mono" }, o.ip || "–") },
        { title: "Task status", value: (o) => (o.task_status ? badge(o.task_status) : "–") },
        {
          title: "Where", cls: "small", value: (o) => (o.spilled ? "spilled"
            : o.in_shared_memory ? "shared memory" : "in process"),
        },
      ],
    });
    page.el = h("div", { id: "page-objects" },
      pageHead("Objects", h("span", { class: "count-note" },
        h("span", { id: "objects-count" }, "–"), " reference(s) · ",
        h("span", { id: "objects-total-size" }, "–"))),
      h("div", { class: "panel" }, h("h3", null, "Object store by node"), stores),
      h("div", { class: "filters" }, field("Reference type", refSel), field("Search", textIn)),
      h("div", { class: "panel flush" }, table.el));

    page.refresh = async () => {
      const body = await api("/api/objects");
      put(stores, h("div", { class: "grid two" }, body.nodes.map((n) => {
        const s = n.store || {};
        return h("div", { class: "node-store", data: { nodeId: n.node_id } },
          meter(h("span", null, h("span", { class: "mono" }, n.ip), " ",
            h("span", { class: "muted mono small" }, short(n.node_id))),
          s.used, s.capacity, `${fmt.bytes(s.used)} / ${fmt.bytes(s.capacity)}`),
          h("div", { class: "muted small" },
            `${s.num_objects || 0} objects · ${fmt.bytes(s.pinned || 0)} pinned · ` +
            `${fmt.bytes(s.spilled || 0)} spilled (${s.num_spilled || 0})`));
      })));
      const types = [...new Set(body.objects.map((o) => o.reference_type))].sort();
      const have = [...refSel.options].map((o) => o.value);
      for (const t of types) if (!have.includes(t)) refSel.appendChild(h("option", { value: t }, t));
      let rows = body.objects;
      if (refSel.value) rows = rows.filter((o) => o.reference_type === refSel.value);
      const text = textIn.value.trim().toLowerCase();
      if (text) {
        rows = rows.filter((o) => `${o.object_id} ${o.call_site || ""}`.toLowerCase().includes(text));
      }
      rows = rows.slice().sort((a, b) => (a.ip || "").localeCompare(b.ip || "") ||
        (b.object_size || 0) - (a.object_size || 0));
      table.update(rows.slice(0, 1000));
      setText(byId("objects-count"), rows.length);
      setText(byId("objects-total-size"),
        fmt.bytes(rows.reduce((a, o) => a + Math.max(0, o.object_size || 0), 0)));
    };
    return page;
  }

  // ---------------------------------------------------------------------------------------
  // Jobs
  // ---------------------------------------------------------------------------------------
  function jobsPage() {
    const table = dataTable({
      id: "jobs-table",
      key: (j) => j.job_id,
      rowData: (j) => ({ jobId: j.job_id, status: j.status }),
      empty: "No jobs yet.",
      columns: [
        { title: "Job", value: (j) => h("span", { class: "mono" }, j.job_id) },
        { title: "Type", cls: "small", value: (j) => j.type },
        { title: "Status", value: (j) => badge(j.status) },
        { title: "Entrypoint", cls: "wrap", value: (j) => h("span", { class: "mono" }, j.entrypoint || "–") },
        { title: "Started", cls: "num", value: (j) => fmt.time(j.start_time) },
        { title: "Ended", cls: "num", value: (j) => fmt.time(j.end_time) },
        {
          title: "Duration", cls: "num right", value: (j) => (j.start_time
            ? fmt.dur((j.end_time || Date.now()) - j.start_time) : "–"),
        },
        {
          title: "Driver", value: (j) => (j.driver_info
            ? `${j.driver_info.node_ip_address || "?"} pid ${j.driver_info.pid || "?"}` : "–"),
        },
        { title: "", value: (j) => h("a", { href: `#/tasks?job_id=${j.job_id}` }, "tasks") },
      ],
    });
    const el = h("div", { id: "page-jobs" },
      pageHead("Jobs", h("span", { class: "count-note", id: "jobs-count" })),
      h("div", { class: "panel flush" }, table.el));
    async function refresh() {
      const { jobs } = await api("/api/jobs");
      const rows = jobs.slice().sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
      table.update(rows);
      const running = rows.filter((j) => j.status === "RUNNING").length;
      setText(byId("jobs-count"), `${running} running · ${rows.length - running} finished`);
    }
    return { el, refresh, title: "Jobs" };
  }

  // ---------------------------------------------------------------------------------------
  // Timeline
  // ---------------------------------------------------------------------------------------
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
        d.args && d.args.task_id ? h("div", { class: "t-row mono" }, `task ${short(d.args.task_id, 12)}`) : null,
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
          const tname = threads[`${pid}:${tid}`] || `worker ${tid}`;
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

  function notFoundPage({ args }) {
    return {
      el: h("div", null, notFound("Page", `Nothing at #${args[0]}. Use the links above.`)),
      title: "Not found",
    };
  }

  // ---------------------------------------------------------------------------------------
  // Router and the refresh loop
  // ---------------------------------------------------------------------------------------
  const ROUTES = [
    [/^\/?$/, overviewPage, "overview"],
    [/^\/nodes\/?$/, nodesPage, "nodes"],
    [/^\/tasks\/?$/, tasksPage, "tasks"],
    [/^\/tasks\/([0-9a-fA-F]+)$/, taskPage, "tasks"],
    [/^\/actors\/?$/, actorsPage, "actors"],
    [/^\/actors\/([0-9a-fA-F]+)$/, actorPage, "actors"],
    [/^\/objects\/?$/, objectsPage, "objects"],
    [/^\/jobs\/?$/, jobsPage, "jobs"],
    [/^\/logs\/?$/, logsPage, "logs"],
    [/^\/timeline\/?$/, timelinePage, "timeline"],
  ];

  const view = byId("view");
  const conn = byId("conn-status");
  const banner = byId("banner");
  let current = null;
  let paused = false;

  function parseHash() {
    const raw = window.location.hash.replace(/^#/, "") || "/";
    const i = raw.indexOf("?");
    return {
      path: i < 0 ? raw : raw.slice(0, i),
      query: new URLSearchParams(i < 0 ? "" : raw.slice(i + 1)),
    };
  }

  function route() {
    const { path, query } = parseHash();
    for (const [re, make, nav] of ROUTES) {
      const m = path.match(re);
      if (m) return mount(make, { args: m.slice(1).map((a) => a.toLowerCase()), query }, nav);
    }
    return mount(notFoundPage, { args: [path], query }, null);
  }

  function mount(make, ctx, nav) {
    for (const a of document.querySelectorAll("#nav a")) {
      a.classList.toggle("active", a.dataset.route === nav);
    }
    const page = make(ctx);
    current = page;
    view.replaceChildren(page.el);
    view.dataset.page = nav || "none";
    document.title = `${page.title ? `${page.title} · ` : ""}shoal dashboard`;
    window.scrollTo(0, 0);
    run(page);
  }

  function setConn(state, text) {
    conn.dataset.state = state;
    setText(conn, text);
  }

  async function run(page) {
    let wake = null;
    let again = false;
    page.kick = () => {
      again = true;
      if (wake) wake();
    };
    let first = true;
    while (current === page) {
      const started = Date.now();
      again = false;
      if (page.refresh && (first || (!paused && !document.hidden))) {
        try {
          const fetched = await page.refresh(first);
          if (current !== page) return;
          banner.hidden = true;
          if (!paused) setConn("live", "live");
          if (fetched !== false) setText(byId("last-update"), `updated ${fmt.time(Date.now())}`);
        } catch (e) {
          if (current !== page) return;
          setConn("error", "offline");
          setText(banner, e.message || String(e));
          banner.hidden = false;
        }
      }
      first = false;
      if (again) continue;
      const every = page.every || 1000;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.max(50, every - (Date.now() - started)));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  }

  conn.addEventListener("click", () => {
    paused = !paused;
    if (paused) setConn("paused", "paused");
    else {
      setConn("live", "live");
      if (current && current.kick) current.kick();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && current && current.kick) current.kick();
  });
  window.addEventListener("hashchange", route);

  async function whoami() {
    try {
      const me = await api("/api/whoami");
      setText(byId("version"), `v${me.version}`);
      byId("logout-form").hidden = !me.authenticated;
      // On loopback reading needs no token, but killing an actor does: offer to log in.
      byId("login-link").hidden = me.authenticated;
      document.body.dataset.authenticated = me.authenticated ? "1" : "0";
    } catch (e) {
      /* the page's own refresh reports a server that cannot be reached */
    }
  }

  whoami();
  route();
})();
