/* The dashboard's router, refresh loop and connection status (see ui.js for the design).
 *
 * Each page is an object {el, refresh, every, title}: the router mounts `el` and calls
 * `refresh()` at once, then every `every` ms (1000 by default) while the page is shown.
 */
"use strict";

(() => {
  const { h, byId, setText, fmt, api, notFound, pages } = window.shoal;

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
    [/^\/?$/, pages.overviewPage, "overview"],
    [/^\/nodes\/?$/, pages.nodesPage, "nodes"],
    [/^\/tasks\/?$/, pages.tasksPage, "tasks"],
    [/^\/tasks\/([0-9a-fA-F]+)$/, pages.taskPage, "tasks"],
    [/^\/actors\/?$/, pages.actorsPage, "actors"],
    [/^\/actors\/([0-9a-fA-F]+)$/, pages.actorPage, "actors"],
    [/^\/objects\/?$/, pages.objectsPage, "objects"],
    [/^\/jobs\/?$/, pages.jobsPage, "jobs"],
    [/^\/logs\/?$/, pages.logsPage, "logs"],
    [/^\/timeline\/?$/, pages.timelinePage, "timeline"],
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
