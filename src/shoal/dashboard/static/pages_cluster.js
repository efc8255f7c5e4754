/* Dashboard pages about the cluster's state: overview, nodes, objects and jobs. */
"use strict";

(() => {
  const shoal = window.shoal;
  const { h, byId, setText, put, debounce, fmt, short, distinctId, idSpan, badge, meter, api, dataTable,
    pageHead, field, card, nodeLabel, logsHref } = shoal;

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
        card("Tasks finished", "tasks-finished",
          [["failed", "tasks-failed"], ["records dropped", "tasks-dropped"]],
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
      setText(byId("tasks-dropped"), s.task_records_dropped || 0);
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
      key: (o) => `${o.object_id}:${o.pid}:${o.reference_type}:${o.borrower}`,
      rowData: (o) => ({ objectId: o.object_id, referenceType: o.reference_type }),
      empty: "No object references.",
      columns: [
        { title: "Object", value: (o) => idSpan(o.object_id, distinctId) },
        { title: "Size", cls: "num right", value: (o) => (o.object_size >= 0 ? fmt.bytes(o.object_size) : "?") },
        { title: "Reference", cls: "small", value: (o) => o.reference_type },
        { title: "Call site", value: (o) => h("span", { class: "mono" }, o.call_site || "–") },
        { title: "Holder", value: (o) => `${o.type || "?"} ${o.pid > 0 ? o.pid : ""}` },
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
      key: (j) => j.submission_id || j.job_id,
      rowData: (j) => ({ jobId: j.job_id || "", submissionId: j.submission_id || "", status: j.status }),
      empty: "No jobs yet.",
      columns: [
        { title: "Job", value: (j) => h("span", { class: "mono" }, j.job_id || "–") },
        { title: "Submission", value: (j) => h("span", { class: "mono" }, j.submission_id || "–") },
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
        { title: "", value: (j) => (j.job_id ? h("a", { href: `#/tasks?job_id=${j.job_id}` }, "tasks") : "") },
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

  Object.assign(shoal.pages, { overviewPage, nodesPage, objectsPage, jobsPage });
})();
