"""Addresses of listeners, as daemons advertise them: ``tcp:IP:PORT|unix:/path`` (or one of
the two). Pure string work, for the transport and for the pure tables that read addresses."""

from __future__ import annotations


def join_address(tcp: str | None, unix_path: str) -> str:
    """The advertised address of a listener: ``tcp:IP:PORT|unix:/path`` or ``unix:/path``."""
    return f"tcp:{tcp}|unix:{unix_path}" if tcp else f"unix:{unix_path}"


def split_address(address: str) -> tuple[str | None, str | None]:
    """``(host:port or None, unix path or None)`` of an address in any accepted form."""
    tcp = unix = None
    for part in address.split("|"):
        if part.startswith("unix:"):
            unix = part[5:]
        elif part.startswith("tcp:"):
            tcp = part[4:]
        elif part:
            tcp = part
    return tcp, unix
