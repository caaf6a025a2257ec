"""Guards for the destinations a tool call names: URLs (against SSRF) and paths (against traversal).

Design: deny by default and parse the way the consumer will. ``check_url`` accepts only http(s)
without credentials, backslashes, whitespace or percent-encoded hosts (each a known parser
differential: ``http://evil\\@127.0.0.1`` means different hosts to different parsers). It maps
the host as browsers do (IDNA 2008 + UTS 46: fullwidth digits are digits; one trailing dot) and
reads numeric hosts as both the WHATWG URL standard and ``inet_aton`` do (decimal, octal, hex,
1-4 parts: ``2130706433``, ``0177.1``, ``0x7f.1`` are all 127.0.0.1); a host that ends in a
number but does not parse is refused, as browsers refuse it. Addresses are classified from
explicit tables (stable across Python versions, whose ``is_global`` has changed), looking
inside IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 forms; names resolve and every
address must pass. Metadata, unspecified, multicast and reserved addresses stay refused under
``allow_private``. Limits: resolution here and the connection later are two lookups, so a
rebinding DNS server can answer differently; the HTTP client should connect to the checked
addresses (or re-check at connect time). ``check_path`` resolves ``~``, ``..`` and every
symlink (of the missing tail too: a new file under a symlinked directory lands where the link
points) before testing containment; the check and the later open are still two steps.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import idna

from mcpproxy.errors import NotFound, PolicyDenied

Resolver = Callable[[str], Awaitable[list[str]]]
IPAddress = IPv4Address | IPv6Address

# (network, reason, allowed with allow_private)
_V4 = [
    (IPv4Network(n), r, p)
    for n, r, p in (
        ("0.0.0.0/8", "unspecified", False),
        ("10.0.0.0/8", "private", True),
        ("100.64.0.0/10", "shared (CGNAT)", True),
        ("127.0.0.0/8", "loopback", True),
        ("169.254.0.0/16", "link-local", True),
        ("172.16.0.0/12", "private", True),
        ("192.0.0.0/24", "IETF protocol", False),
        ("192.0.2.0/24", "documentation", False),
        ("192.88.99.0/24", "6to4 relay", False),
        ("192.168.0.0/16", "private", True),
        ("198.18.0.0/15", "benchmarking", True),
        ("198.51.100.0/24", "documentation", False),
        ("203.0.113.0/24", "documentation", False),
        ("224.0.0.0/4", "multicast", False),
        ("240.0.0.0/4", "reserved", False),
    )
]
_V6 = [
    (IPv6Network(n), r, p)
    for n, r, p in (
        ("::1/128", "loopback", True),
        ("64:ff9b:1::/48", "local NAT64", False),
        ("100::/64", "discard", False),
        ("2001::/32", "Teredo", False),
        ("2001:db8::/32", "documentation", False),
        ("3fff::/20", "documentation", False),
        ("fc00::/7", "unique local", True),
        ("fe80::/10", "link-local", True),
        ("fec0::/10", "site-local", True),
    )
]
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_LOOPBACK_V6 = IPv6Address("::1")
# IPv6 ranges whose last 32 bits are an IPv4 address: compatible, NAT64, SIIT-translated.
_EMBEDDED_V4 = [IPv6Network(n) for n in ("::/96", "64:ff9b::/96", "::ffff:0:0:0/96")]
# AWS/GCP/Azure, AWS ECS task credentials, AWS IPv6, Alibaba.
_METADATA_IPS = {
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
}
_METADATA_NAMES = {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
_FORBIDDEN_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\\\s]")
_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_NUMERIC_PART = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


def _deny(message: str, host: str, reason: str) -> PolicyDenied:
    return PolicyDenied(
        f"URL refused: {message}",
        hint="Only http(s) URLs to public internet addresses are allowed.",
        data={"host": host, "reason": reason},
    )


def parse_ipv4(host: str) -> IPv4Address | None:
    """Read a numeric host the way browsers and ``inet_aton`` do.

    Args:
        host: An ASCII host name, lower case, without brackets.

    Returns:
        The address, or None when the host is a name (its last label is not a number).

    Raises:
        PolicyDenied: The host ends in a number but is not a valid address.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not _NUMERIC_PART.fullmatch(parts[-1]):
        return None
    numbers: list[int] = []
    for part in parts:
        if _NUMERIC_PART.fullmatch(part) and part[:2] in ("0x", "0X"):
            numbers.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]+", part):
            numbers.append(int(part, 8))
        elif re.fullmatch(r"0|[1-9][0-9]*", part):
            numbers.append(int(part))
        else:
            raise _deny(f"malformed numeric host {host!r}", host, "malformed")
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise _deny(f"malformed numeric host {host!r}", host, "malformed")
    return IPv4Address(numbers[-1] + sum(n << 8 * (3 - i) for i, n in enumerate(numbers[:-1])))


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why ``ip`` may not be contacted ("loopback", "IPv6-embedded private", ...), or None when it may."""
    if ip in _METADATA_IPS:
        return "cloud metadata service"
    if ip.is_multicast or ip.is_unspecified:
        return "multicast" if ip.is_multicast else "unspecified"
    if isinstance(ip, IPv4Address):
        for net4, reason, private_ok in _V4:
            if ip in net4:
                return None if private_ok and allow_private else reason
        return None if ip.is_global else "reserved"
    embedded = ip.ipv4_mapped or ip.sixtofour
    if embedded is None and ip != _LOOPBACK_V6 and any(ip in net for net in _EMBEDDED_V4):
        embedded = IPv4Address(int(ip) & 0xFFFFFFFF)
    if embedded is not None:
        problem = address_problem(embedded, allow_private=allow_private)
        return f"IPv6-embedded {problem}" if problem else None
    for net6, reason, private_ok in _V6:
        if ip in net6:
            return None if private_ok and allow_private else reason
    return None if ip in _GLOBAL_UNICAST else "reserved"


async def _getaddrinfo(host: str) -> list[str]:
    return [info[4][0] for info in await anyio.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


async def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> None:
    """Refuse URLs that could reach the gateway's own machine or network (SSRF).

    Args:
        url: The URL a tool is about to fetch.
        allow_private: Allow loopback, private, link-local and unique-local destinations
            (a local dev server); metadata, multicast and reserved addresses stay refused.
        resolver: Resolves a host name to addresses; ``anyio.getaddrinfo`` by default.

    Raises:
        PolicyDenied: The URL is not http(s), is ambiguous, or its host is, or resolves to,
            an address that is not public.
    """
    if _FORBIDDEN_IN_URL.search(url):
        raise _deny("the URL contains whitespace, control characters or backslashes", "", "malformed")
    try:
        parts = urlsplit(url)
        hostname, _port = parts.hostname or "", parts.port  # reading .port validates it
    except ValueError as exc:
        raise _deny(f"malformed URL ({exc})", "", "malformed") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise _deny(f"scheme {parts.scheme or '(none)'!r} is not http or https", hostname, "scheme")
    if "@" in parts.netloc:
        raise _deny("credentials in URLs are not allowed (send them in a header)", hostname, "credentials")
    if not hostname:
        raise _deny("the URL has no host", "", "malformed")
    if "%" in hostname:
        raise _deny("percent-encoded or zone-scoped hosts are not allowed", hostname, "malformed")
    ip: IPAddress | None = None
    if parts.netloc.startswith("["):
        try:
            ip = IPv6Address(hostname)
        except ValueError as exc:
            raise _deny(f"invalid IPv6 host {hostname!r}", hostname, "malformed") from exc
    else:
        try:
            # IDNA 2008 with UTS 46 mapping, as browsers and anyio's resolver do; the stdlib codec (IDNA 2003)
            # maps some names elsewhere ("faß" -> "fass"), which would check one host and fetch another.
            host = hostname if hostname.isascii() else idna.encode(hostname, uts46=True).decode("ascii")
        except UnicodeError as exc:
            raise _deny(f"invalid internationalised host {hostname!r}", hostname, "malformed") from exc
        host = host[:-1] if host.endswith(".") else host
        if not _HOST.fullmatch(host):
            raise _deny(f"invalid host {hostname!r}", hostname, "malformed")
        ip = parse_ipv4(host)
        hostname = host
    if ip is not None:
        problem = address_problem(ip, allow_private=allow_private)
        if problem:
            raise _deny(f"host {hostname} is not a public address ({problem})", hostname, problem)
        return
    if hostname in _METADATA_NAMES or hostname.endswith(".metadata.google.internal"):
        raise _deny(f"host {hostname} is a cloud metadata service", hostname, "cloud metadata service")
    if not allow_private and (hostname == "localhost" or hostname.endswith(".localhost")):
        raise _deny(f"host {hostname} is a loopback name", hostname, "loopback")
    try:
        addresses = await (resolver or _getaddrinfo)(hostname)
    except OSError as exc:
        raise _deny(f"host {hostname} could not be resolved ({exc})", hostname, "unresolved") from exc
    if not addresses:
        raise _deny(f"host {hostname} resolves to no address", hostname, "unresolved")
    for address in addresses:
        try:
            resolved = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError as exc:
            raise _deny(f"host {hostname} resolves to {address!r}", hostname, "malformed") from exc
        problem = "link-local" if "%" in address else address_problem(resolved, allow_private=allow_private)
        if problem:
            raise _deny(f"host {hostname} resolves to {resolved}, not a public address ({problem})", hostname, problem)


def check_path(path: str, *, roots: Sequence[Path], must_exist: bool = False) -> Path:
    """Resolve ``path`` fully and refuse it unless it lies under one of ``roots``.

    Relative paths are taken from the current directory, ``~`` is expanded, and symlinks
    are followed (a symlink pointing outside a root is outside).

    Args:
        path: The path a tool is about to use.
        roots: The directories it may use (resolved the same way).
        must_exist: Also require that the path exists.

    Returns:
        The resolved absolute path.

    Raises:
        PolicyDenied: NUL byte, no roots, symlink loop, unreadable, or outside every root.
        NotFound: ``must_exist`` and the (allowed) path does not exist.
    """
    if "\x00" in path:
        raise PolicyDenied("path refused: it contains a NUL byte", data={"path": path})
    try:
        resolved = Path(path).expanduser().resolve()
        allowed = [Path(root).expanduser().resolve() for root in roots]
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop or unknown ~user
        raise PolicyDenied(f"path refused: {path!r} cannot be resolved ({exc})", data={"path": path}) from exc
    if not any(resolved.is_relative_to(root) for root in allowed):
        raise PolicyDenied(
            f"path refused: {path!r} is outside the allowed directories",
            hint="Allowed: " + (", ".join(map(str, allowed)) or "(none configured)"),
            data={"path": path},  # not the resolved path: that would reveal where links point
        )
    # Existence is only reported inside the roots, so that this is no oracle for the rest of the disk.
    try:
        missing = must_exist and not resolved.exists()
    except OSError as exc:
        raise PolicyDenied(f"path refused: {path!r} cannot be read ({exc})", data={"path": path}) from exc
    if missing:
        raise NotFound(f"path {path!r} does not exist", data={"path": path})
    return resolved
