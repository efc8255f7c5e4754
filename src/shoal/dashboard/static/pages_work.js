/* Dashboard pages about the work done: tasks, one task, actors, one actor. */
"use strict";

(() => {
  const shoal = window.shoal;
  const { h, setText, debounce, fmt, short, distinctId, idSpan, idLink, badge, TASK_STATES, ACTOR_STATES,
    api, dataTable, pageHead, field, logsHref, props, notFound, byIdIn, logViewer } = shoal;

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
        { title: "Task", value: (t) => idLink(t.task_id, `#/tasks/${t.task_id}`, distinctId) },
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
    return { el, refresh, title: `Task ${distinctId(tid)}` };
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
      let death = actor.death_cause;  // Ray's ActorDeathCause: show its message
      const ctx = death && death.actor_died_error_context;
      if (ctx && ctx.error_message) death = ctx.error_message;
      else if (death && typeof death !== "string") death = JSON.stringify(death, null, 1);
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

  Object.assign(shoal.pages, { tasksPage, taskPage, actorsPage, actorPage });
})();
