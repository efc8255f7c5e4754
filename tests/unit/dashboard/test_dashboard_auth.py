"""The dashboard's request policy (pure): Host, Origin and token rules."""

from shoal.dashboard import auth

TOKEN = "ab" * 32


def _loop(port=8265):
    return auth.Policy(token=TOKEN, host="127.0.0.1", port=port)


def _remote(port=8265):
    return auth.Policy(token=TOKEN, host="10.1.2.3", port=port)


def H(host="127.0.0.1:8265", **more):
    return {"host": host, **{k.replace("_", "-"): v for k, v in more.items()}}


def test_loopback_reads_are_open_and_any_loopback_name_is_accepted():
    p = _loop()
    for host in ("127.0.0.1:8265", "localhost:8265", "[::1]:8265", "LOCALHOST:8265"):
        assert p.check("GET", "/api/cluster", H(host), {}).ok, host


def test_foreign_host_is_refused_even_for_reads():
    # DNS rebinding: a page at evil.example resolved to 127.0.0.1 sends its own Host.
    p = _loop()
    d = p.check("GET", "/api/cluster", H("evil.example:8265"), {})
    assert not d.ok and d.status == 421 and "evil.example" in d.reason
    assert not p.check("GET", "/", H("127.0.0.1:9999"), {}).ok  # another port
    assert p.check("GET", "/", {}, {}).status == 400  # no Host at all


def test_state_changes_need_the_token_on_loopback():
    p = _loop()
    d = p.check("POST", "/api/actors/ab/kill", H(), {})
    assert not d.ok and d.status == 401
    bearer = H(authorization=f"Bearer {TOKEN}")
    assert p.check("POST", "/api/actors/ab/kill", bearer, {}).ok
    wrong = H(authorization="Bearer " + "cd" * 32)
    assert p.check("POST", "/api/actors/ab/kill", wrong, {}).status == 401


def test_state_changes_from_a_foreign_origin_are_refused_even_with_the_token():
    p = _loop()
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        d = p.check("POST", "/api/actors/ab/kill",
                    H(origin=origin, authorization=f"Bearer {TOKEN}"), {})
        assert not d.ok and d.status == 403, origin
    cookie = {auth.COOKIE: auth.cookie_value(TOKEN)}
    d = p.check("POST", "/api/actors/ab/kill", H(referer="http://evil.example/x"), cookie)
    assert not d.ok and d.status == 403


def test_cookie_sessions_need_a_matching_origin():
    p = _loop()
    cookie = {auth.COOKIE: auth.cookie_value(TOKEN)}
    assert p.check("POST", "/api/actors/ab/kill", H(origin="http://127.0.0.1:8265"),
                   cookie).ok
    assert p.check("POST", "/api/actors/ab/kill", H(origin="http://localhost:8265"),
                   cookie).ok
    d = p.check("POST", "/api/actors/ab/kill", H(), cookie)  # no Origin, no Referer
    assert not d.ok and d.status == 403
    assert p.check("POST", "/api/x", H(origin="http://127.0.0.1:8265"),
                   {auth.COOKIE: "forged"}).status == 401


def test_non_loopback_binding_needs_the_token_for_everything():
    p = _remote()
    host = "10.1.2.3:8265"
    page = p.check("GET", "/", H(host), {})
    assert not page.ok and page.login  # a page request goes to the login page
    api = p.check("GET", "/api/cluster", H(host), {})
    assert not api.ok and api.status == 401 and not api.login
    assert not p.check("GET", "/metrics", H(host), {}).ok
    assert p.check("GET", "/login", H(host), {}).ok
    assert p.check("GET", "/api/cluster", H(host, authorization=f"Bearer {TOKEN}"), {}).ok
    assert p.check("GET", "/", H(host), {auth.COOKIE: auth.cookie_value(TOKEN)}).ok
    # Loopback names do not reach a dashboard bound to another address.
    assert not p.check("GET", "/login", H("127.0.0.1:8265"), {}).ok


def test_login_post_is_protected_from_foreign_origins():
    p = _remote()
    d = p.check("POST", "/login", H("10.1.2.3:8265", origin="http://evil.example"), {})
    assert not d.ok and d.status == 403
    assert p.check("POST", "/login", H("10.1.2.3:8265", origin="http://10.1.2.3:8265"), {}).ok


def test_wildcard_binding_accepts_this_machines_addresses_and_extra_hosts():
    p = auth.Policy(token=TOKEN, host="0.0.0.0", port=8265, extra_hosts=("dash.corp",))
    assert p.check("GET", "/login", H("127.0.0.1:8265"), {}).ok
    assert p.check("GET", "/login", H("dash.corp:8265"), {}).ok
    assert not p.check("GET", "/login", H("evil.example:8265"), {}).ok
    assert not p.loopback


def test_cookie_is_not_the_token():
    assert auth.cookie_value(TOKEN) != TOKEN and len(auth.cookie_value(TOKEN)) == 64
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1")
    assert auth.is_loopback("localhost") and not auth.is_loopback("10.0.0.1")
    assert not auth.is_loopback("0.0.0.0")
