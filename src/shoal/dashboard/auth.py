"""Who may ask the dashboard what: a pure policy, tested without a server.

- Every request's ``Host`` header must name the dashboard itself (its bound address, or for
  a loopback binding ``127.0.0.1``/``localhost``/``[::1]``, at its port): a page on another
  site that rebinds its DNS name to 127.0.0.1 sends its own name and is refused.
- Bound to anything but loopback, every request needs the cluster token: a ``Bearer`` header,
  or the session cookie that the login page sets after checking the token.
- On loopback, reading is open; every state-changing request (any method but GET/HEAD)
  needs the token as above.
- A state-changing request from a browser must come from the dashboard's own origin: an
  ``Origin`` header (or, without one, a ``Referer``) naming another site is refused; a
  cookie-authenticated one must carry a matching ``Origin``. A request with no ``Origin``
  is accepted only with a ``Bearer`` header: a cross-site page cannot send that header
  without a CORS preflight, which this server never grants, so such a request comes from a
  program, not from a page the user visits.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

COOKIE = "shoal_dashboard"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Reachable without the token even when the token is required: the login page, its assets.
PUBLIC_PATHS = ("/login", "/static/style.css", "/favicon.ico")


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookie_value(token: str) -> str:
    """The session cookie: derived from the token, so the cookie is not the token itself."""
    return hmac.new(token.encode(), b"shoal-dashboard-session", hashlib.sha256).hexdigest()


@dataclass
class Decision:
    ok: bool
    status: int = 200
    reason: str = ""
    login: bool = False  # a page request that should go to the login page instead


@dataclass
class Policy:
    token: str
    host: str  # the address the server is bound to
    port: int
    extra_hosts: tuple[str, ...] = ()
    allowed: set[str] = field(default_factory=set)  # host[:port] values accepted in Host

    def __post_init__(self) -> None:
        self.loopback = is_loopback(self.host)
        names = {self.host}
        if self.loopback:
            names |= {"127.0.0.1", "localhost", "[::1]", "::1"}
        elif self.host in ("0.0.0.0", "::", ""):
            names |= _machine_names()
        names |= set(self.extra_hosts)
        allowed = set()
        for n in names:
            n = f"[{n}]" if ":" in n and not n.startswith("[") else n
            allowed.add(f"{n}:{self.port}".lower())
            if self.port == 80:
                allowed.add(n.lower())
        self.allowed = allowed
        self.origins = {f"http://{a}" for a in allowed} | {f"https://{a}" for a in allowed}

    def token_ok(self, headers: dict, cookies: dict) -> tuple[bool, bool]:
        """(authenticated, by the Bearer header)."""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()), True
        c = cookies.get(COOKIE)
        if c:
            return hmac.compare_digest(c.encode(), cookie_value(self.token).encode()), False
        return False, False

    def check(self, method: str, path: str, headers: dict, cookies: dict) -> Decision:
        """``headers`` with lower-case names."""
        host = headers.get("host", "").lower()
        if host not in self.allowed:
            return Decision(False, 421 if host else 400,
                            f"Host {host!r} is not this dashboard's address")
        changing = method.upper() not in SAFE_METHODS
        origin = headers.get("origin")
        if origin is None and changing and headers.get("referer"):
            ref = urlsplit(headers["referer"])
            origin = f"{ref.scheme}://{ref.netloc}"
        if changing and origin is not None and origin.lower() not in self.origins:
            return Decision(False, 403, f"Origin {origin!r} is not this dashboard")
        if path in PUBLIC_PATHS:
            return Decision(True)
        authed, bearer = self.token_ok(headers, cookies)
        if changing:
            if not authed:
                return Decision(False, 401, "this request needs the cluster token")
            if origin is None and not bearer:
                return Decision(False, 403, "a request with the session cookie needs an "
                                "Origin header naming this dashboard")
            return Decision(True)
        if self.loopback or authed:
            return Decision(True)
        page = not path.startswith(("/api/", "/metrics"))
        return Decision(False, 401, "this dashboard needs the cluster token", login=page)


def _machine_names() -> set[str]:
    """What a client may call this machine: its hostname and addresses."""
    names = {socket.gethostname(), socket.getfqdn(), "127.0.0.1", "localhost"}
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(a.address.split("%")[0])
    except Exception:  # noqa: BLE001 - the hostname alone still works
        pass
    return {n for n in names if n}
