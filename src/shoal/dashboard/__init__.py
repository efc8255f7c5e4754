"""The dashboard: an HTTP server in the head process (pages, ``/api/``, ``/metrics``).

``server`` runs it, ``auth`` decides who may ask what (pure), ``data`` gathers the cluster's
state from the control store, ``metrics`` renders Prometheus text, ``static/`` holds the
pages. ``docs/dashboard.md`` documents the API.
"""
