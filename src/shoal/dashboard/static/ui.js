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
 *
 * The front end is split in plain scripts, loaded in order by index.html (no modules, no
 * build step): ui.js (this file) holds the shared pieces (DOM helpers, formatting, the API
 * wrapper, tables, the log viewer) and publishes them on the one global `window.shoal`;
 * pages_*.js add their page functions to `shoal.pages`; app.js routes and refreshes.
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

  /* Task ids are a per-process random prefix (16 bytes) and a counter (8 bytes); object ids
     are a task id and an index (4 bytes). Every row a process made shares the prefix, so a
     table shows its first characters (whose), then the counter (and the index): the part
     that tells the rows apart. The whole id is the title. */
  function distinctId(id) {
    const s = id ? String(id) : "";
    if (s.length === 48) return `${s.slice(0, 4)}…${s.slice(40)}`;
    if (s.length === 56) return `${s.slice(0, 4)}…${s.slice(40, 48)}:${s.slice(48)}`;
    return short(s, 12);
  }

  // ``n``: how many first characters to show, or a function of the id (distinctId).
  const cut = (id, n) => (typeof n === "function" ? (id ? n(id) : "–") : short(id, n));

  function idSpan(id, n = 8) {
    return h("span", { class: "mono", title: id || null }, cut(id, n));
  }

  function idLink(id, href, n = 8) {
    if (!id) return "–";
    return h("a", { class: "mono", href, title: id }, cut(id, n));
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

  function byIdIn(root, id) {
    return root.querySelector(`#${id}`);
  }

  // ---------------------------------------------------------------------------------------
  // A log viewer (tail, then follow by offset): the log page and the actor page use it
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

  window.shoal = {
    h, add, byId, setText, put, debounce, fmt, short, distinctId, idSpan, idLink, badge,
    TASK_STATES,
    ACTOR_STATES, meter, ApiError, api, dataTable, pageHead, field, card, nodeLabel, logsHref,
    props, notFound, byIdIn, logViewer,
    pages: {}, // filled by pages_*.js
  };
})();
