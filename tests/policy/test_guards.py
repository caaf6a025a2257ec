"""URL guard (SSRF), with property-based checks of the numeric host spellings."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcpproxy.errors import PolicyDenied
from mcpproxy.policy.guards import address_problem, check_url, parse_ipv4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


PUBLIC = "93.184.216.34"


def resolving_to(*addresses: str) -> Callable[[str], Awaitable[list[str]]]:
    async def resolve(host: str) -> list[str]:
        return list(addresses)

    return resolve


async def no_dns(host: str) -> list[str]:
    raise AssertionError(f"{host} should not need DNS")


def allowed(url: str, *, resolver: Callable[[str], Awaitable[list[str]]] = no_dns, private: bool = False) -> bool:
    try:
        anyio.run(lambda: check_url(url, allow_private=private, resolver=resolver))
    except PolicyDenied:
        return False
    return True


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com:70/", "scheme"),
        ("example.com/path", "scheme"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://token@example.com/", "credentials"),
        ("http://evil.example\\@127.0.0.1/", "malformed"),
        ("http://exa mple.com/", "malformed"),
        ("http://example.com\n.evil/", "malformed"),
        ("http://%31%32%37.0.0.1/", "malformed"),
        ("http:///path", "malformed"),
        ("http://example.com:99999/", "malformed"),
        ("http://[v1.fe]/", "malformed"),
        ("http://[fe80::1%25eth0]/", "malformed"),
        ("http://a..b/", "malformed"),
        ("http://1.2.3.4.5/", "malformed"),
        ("http://09.1/", "malformed"),
        ("http://www.123/", "malformed"),
        ("http://0xzz.1/", "malformed"),
        ("http://127.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://127.1:8080/", "loopback"),
        ("http://127.0.0.1./", "loopback"),
        ("http://LOCALHOST/", "loopback"),
        ("http://api.localhost./", "loopback"),
        ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "loopback"),
        ("http://１２７．０．０．１/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv6-embedded loopback"),
        ("http://[::ffff:7f00:1]/", "IPv6-embedded loopback"),
        ("http://[::127.0.0.1]/", "IPv6-embedded loopback"),
        ("http://[64:ff9b::10.1.2.3]/", "IPv6-embedded private"),
        ("http://[2002:c0a8:0101::]/", "IPv6-embedded private"),
        ("http://10.0.0.1/", "private"),
        ("http://172.31.255.255/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.0.1/", "shared (CGNAT)"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd12:3456::1]/", "unique local"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata service"),
        ("http://[fd00:ec2::254]/", "cloud metadata service"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.251/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://255.255.255.255/", "reserved"),
        ("http://192.0.2.10/", "documentation"),
        ("http://[2001:db8::1]/", "documentation"),
    ],
)
@pytest.mark.anyio
async def test_refused_urls(url: str, reason: str) -> None:
    with pytest.raises(PolicyDenied) as caught:
        await check_url(url, resolver=resolving_to(PUBLIC))
    assert caught.value.data["reason"] == reason
    assert caught.value.message.startswith("URL refused: ")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "HTTP://Example.COM:8080/a?b=c#d",
        "https://bücher.example/",
        "http://example.com./",
        "http://8.8.8.8/",
        "http://0x08080808/",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::1.1.1.1]/",
    ],
)
@pytest.mark.anyio
async def test_public_urls_pass(url: str) -> None:
    await check_url(url, resolver=resolving_to(PUBLIC, "2606:4700::6810:85e5"))


@pytest.mark.anyio
async def test_every_resolved_address_must_be_public() -> None:
    with pytest.raises(PolicyDenied, match=r"resolves to 10\.0\.0\.7, not a public address \(private\)"):
        await check_url("https://example.com/", resolver=resolving_to(PUBLIC, "10.0.0.7"))
    with pytest.raises(PolicyDenied, match="IPv6-embedded loopback"):
        await check_url("https://example.com/", resolver=resolving_to("::ffff:127.0.0.1"))
    with pytest.raises(PolicyDenied, match="link-local"):
        await check_url("https://example.com/", resolver=resolving_to("fe80::1%eth0"))
    with pytest.raises(PolicyDenied, match="resolves to no address"):
        await check_url("https://example.com/", resolver=resolving_to())

    async def failing(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(PolicyDenied, match="could not be resolved"):
        await check_url("https://nowhere.invalid/", resolver=failing)


@pytest.mark.anyio
async def test_names_are_resolved_as_the_http_client_will_send_them() -> None:
    asked: list[str] = []

    async def record(host: str) -> list[str]:
        asked.append(host)
        return [PUBLIC]

    await check_url("https://Faß.Example./x", resolver=record)  # IDNA 2008, not the stdlib's "fass"
    await check_url("https://ＥＸＡＭＰＬＥ．com/", resolver=record)
    assert asked == ["xn--fa-hia.example", "example.com"]


@pytest.mark.anyio
async def test_allow_private_opens_local_networks_but_not_metadata() -> None:
    for url in (
        "http://localhost:3000/",
        "http://10.1.2.3/",
        "http://[::1]:8080/",
        "http://[fd12::1]/",
        "http://100.101.102.103/",
        "http://169.254.10.10/",
    ):
        await check_url(url, allow_private=True, resolver=resolving_to("127.0.0.1"))
    for url in (
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "file:///etc/passwd",
        "http://u:p@localhost/",
    ):
        with pytest.raises(PolicyDenied):
            await check_url(url, allow_private=True, resolver=resolving_to("127.0.0.1"))


NOT_PUBLIC_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
PRIVATE_V4 = [
    n
    for n in NOT_PUBLIC_V4
    if str(n)
    in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8")
]


@st.composite
def numeral(draw: st.DrawFn, n: int) -> str:
    style = draw(st.sampled_from(["dec", "oct", "hex"]))
    zeros = "0" * draw(st.integers(0, 3))
    if style == "dec":
        return str(n)
    if style == "oct":
        return "0" + zeros + format(n, "o")
    upper = draw(st.booleans())
    return ("0X" if upper else "0x") + zeros + format(n, "X" if upper else "x")


@st.composite
def encodings(draw: st.DrawFn, value: int) -> str:
    """One of the many spellings of an IPv4 address that browsers or inet_aton accept."""
    a, b, c, d = ipaddress.IPv4Address(value).packed
    dotted = f"{a}.{b}.{c}.{d}"
    form = draw(st.sampled_from(["1", "2", "3", "4", "fullwidth", "mapped", "mapped-hex", "nat64", "compat", "6to4"]))
    if form.isdigit():
        parts = {1: [value], 2: [a, value & 0xFFFFFF], 3: [a, b, value & 0xFFFF], 4: [a, b, c, d]}[int(form)]
        host = ".".join(draw(numeral(p)) for p in parts) + draw(st.sampled_from(["", "."]))
    elif form == "fullwidth":
        fullwidth = dotted.translate({ord(str(i)): 0xFF10 + i for i in range(10)})
        host = fullwidth.replace(".", draw(st.sampled_from("．。.")))
    else:
        hi, lo = f"{value >> 16:x}", f"{value & 0xFFFF:x}"
        host = (
            "["
            + {
                "mapped": f"::ffff:{dotted}",
                "mapped-hex": f"::FFFF:{hi}:{lo}",
                "nat64": f"64:ff9b::{dotted}",
                "compat": f"::{dotted}",
                "6to4": f"2002:{hi}:{lo}::1",
            }[form]
            + "]"
        )
    return host


def address_in(networks: list[ipaddress.IPv4Network]) -> st.SearchStrategy[int]:
    return st.sampled_from(networks).flatmap(lambda net: st.integers(int(net[0]), int(net[-1])))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), value=address_in(NOT_PUBLIC_V4), suffix=st.sampled_from(["", "/", ":8080/x", "/?q=1#f"]))
def test_every_encoding_of_a_non_public_ipv4_is_refused(data: st.DataObject, value: int, suffix: str) -> None:
    # A resolver that vouches for every name: only the numeric parsing can catch these.
    assert not allowed(f"http://{data.draw(encodings(value))}{suffix}", resolver=resolving_to(PUBLIC))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), value=address_in(PRIVATE_V4))
def test_private_ipv4_spellings_pass_only_with_allow_private(data: st.DataObject, value: int) -> None:
    host = data.draw(encodings(value))
    assert not allowed(f"https://{host}/")
    assert allowed(f"https://{host}/", private=True) == (value >> 24 != 0)  # 0.0.0.0/8 stays refused


# First octets that hold no special-purpose range (100, 169, 172, 192, 198 and 203 do).
PUBLIC_FIRST_OCTETS = [n for n in range(1, 224) if n not in (10, 100, 127, 169, 172, 192, 198, 203)]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), first=st.sampled_from(PUBLIC_FIRST_OCTETS), rest=st.integers(0, 2**24 - 1))
def test_public_ipv4_in_any_spelling_passes(data: st.DataObject, first: int, rest: int) -> None:
    value = first << 24 | rest
    ip = ipaddress.IPv4Address(value)
    assert ip.is_global and not any(ip in net for net in NOT_PUBLIC_V4)  # the oracle agrees it is public
    assert allowed(f"http://{data.draw(encodings(value))}/")


@settings(max_examples=50, deadline=None)
@given(value=st.integers(0x2600 << 112, (0x2610 << 112) - 1))
def test_public_ipv6_passes(value: int) -> None:
    assert allowed(f"https://[{ipaddress.IPv6Address(value)}]:443/")


@settings(max_examples=300, deadline=None)
@example("0xx.1")
@example("0x.0x")
@example("00x1.2")
@given(st.text(alphabet="0123456789xXaFg.", min_size=1, max_size=24))
def test_numeric_parser_agrees_with_inet_aton(host: str) -> None:
    try:
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        expected = None
    try:
        got = parse_ipv4(host)
    except PolicyDenied:
        got = None
    if expected is not None:
        assert got == expected
    elif got is not None:  # the WHATWG URL standard also reads these; inet_aton does not
        assert host.endswith(".") or any(part.lower() == "0x" for part in host.split("."))


def test_address_problem_tables() -> None:
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("100.100.100.200"), allow_private=True) == "cloud metadata service"
    assert address_problem(ipaddress.ip_address("2001::1")) == "Teredo"
    assert address_problem(ipaddress.ip_address("64:ff9b:1::a00:1")) == "local NAT64"
