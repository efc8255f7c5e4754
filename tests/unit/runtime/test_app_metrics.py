"""shoal.util.metrics (Ray's ray.util.metrics): validation, recording, merging across
processes and the Prometheus text."""

import pickle

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal._private.runtime import app_metrics
from shoal.util.metrics import Counter, Gauge, Histogram


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    reg = app_metrics.Registry()
    monkeypatch.setattr(app_metrics, "REGISTRY", reg)
    import shoal.util.metrics as um

    monkeypatch.setattr(um, "REGISTRY", reg)
    return reg


def _parsed(snaps):
    text = "\n".join(app_metrics.render(app_metrics.merge(snaps))) + "\n"
    return {s.name + repr(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="Empty name"):
        Counter("")
    with pytest.raises(TypeError, match="tag_keys should be a tuple"):
        Counter("c", tag_keys=["a"])
    with pytest.raises(TypeError, match="Tag keys must be str"):
        Counter("c", tag_keys=(1,))
    c = Counter("c", tag_keys=("route",))
    with pytest.raises(ValueError, match="Missing value for tag key"):
        c.inc()
    with pytest.raises(ValueError, match="value must be >0"):
        c.inc(0, tags={"route": "/"})
    with pytest.raises(TypeError, match="value must be int or float"):
        c.inc("1", tags={"route": "/"})
    with pytest.raises(ValueError, match="Unrecognized tag key"):
        c.set_default_tags({"other": "x"})
    with pytest.raises(TypeError, match="Tag values must be str"):
        c.inc(1, tags={"route": 5})
    with pytest.raises(ValueError, match="boundaries argument should be provided"):
        Histogram("h")
    with pytest.raises(ValueError, match="positive values"):
        Histogram("h", boundaries=[1, 0])
    with pytest.warns(UserWarning, match="Invalid metric name"):
        bad = Counter("1bad")
    bad.inc()  # discarded, not an error


def test_record_merge_and_render(fresh_registry):
    c = Counter("requests", "Requests served", tag_keys=("route",)).set_default_tags(
        {"route": "/"})
    c.inc()
    c.inc(2, tags={"route": "/x"})
    g = Gauge("queue_len", tag_keys=())
    g.set(5)
    g.set(None)  # a no-op, as in Ray
    h = Histogram("latency_s", boundaries=[0.1, 1.0])
    for v in (0.05, 0.5, 3.0):
        h.observe(v)
    mine = fresh_registry.snapshot()
    # Another process recorded the same names: counters and histograms add up, the gauge
    # set last wins.
    other = app_metrics.Registry()
    other.declare("counter", "requests", "Requests served")
    other.record("requests", (("route", "/"),), 10.0)
    other.declare("gauge", "queue_len", "")
    other.record("queue_len", (), 7.0)
    other.declare("histogram", "latency_s", "", [0.1, 1.0])
    other.record("latency_s", (), 0.2)
    got = _parsed([mine, pickle.loads(pickle.dumps(other.snapshot()))])
    assert got["requests_total[('route', '/')]"] == 11  # the parser names counters _total
    assert got["requests_total[('route', '/x')]"] == 2
    assert got["queue_len[]"] == 7
    assert got["latency_s_bucket[('le', '0.1')]"] == 1
    assert got["latency_s_bucket[('le', '1.0')]"] == 3
    assert got["latency_s_bucket[('le', '+Inf')]"] == 4
    assert got["latency_s_count[]"] == 4 and got["latency_s_sum[]"] == pytest.approx(3.75)


def test_metrics_pickle_into_other_processes_with_their_defaults():
    c = Counter("picked", tag_keys=("k",)).set_default_tags({"k": "v"})
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.info["default_tags"] == {"k": "v"} and c2.info["name"] == "picked"
    h2 = pickle.loads(pickle.dumps(Histogram("hh", boundaries=[1, 2])))
    assert h2.info["boundaries"] == [1.0, 2.0]
