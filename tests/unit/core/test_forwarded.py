"""core.forwarded: the client's address behind trusted proxies, examples and properties."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.core.forwarded import Network, client_address, networks, parse_address

LOOPBACK = networks(("127.0.0.0/8", "::1"))
PROXIES = networks(("127.0.0.1/32", "10.0.0.0/8", "fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "header", "trusted", "expected"),
    [
        # Nobody trusted (the default): the header is ignored.
        ("127.0.0.1", ["203.0.113.9"], (), "127.0.0.1"),
        # An untrusted peer's header is ignored.
        ("198.51.100.1", ["203.0.113.9"], LOOPBACK, "198.51.100.1"),
        # nginx appended the client it was reached from.
        ("127.0.0.1", ["203.0.113.9"], LOOPBACK, "203.0.113.9"),
        # What the client wrote to the left is not looked at.
        ("127.0.0.1", ["1.2.3.4, 203.0.113.9"], LOOPBACK, "203.0.113.9"),
        ("127.0.0.1", ["garbage, 203.0.113.9"], LOOPBACK, "203.0.113.9"),
        # Trusted hops on the right are skipped, also across several header lines.
        ("127.0.0.1", ["1.2.3.4, 203.0.113.9", "10.1.2.3,127.0.0.1"], PROXIES, "203.0.113.9"),
        ("10.0.0.5", ["203.0.113.9 , 10.9.9.9"], PROXIES, "203.0.113.9"),
        # Every entry trusted: the leftmost (as nginx's real_ip_recursive).
        ("127.0.0.1", ["10.0.0.7, 127.0.0.1"], PROXIES, "10.0.0.7"),
        # Malformed on the way, or no header, or an empty one: the peer.
        ("127.0.0.1", ["203.0.113.9, 10.0.0.1:8080"], PROXIES, "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9, [2001:db8::1]"], PROXIES, "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9,,"], PROXIES, "127.0.0.1"),
        ("127.0.0.1", [], PROXIES, "127.0.0.1"),
        ("127.0.0.1", [""], PROXIES, "127.0.0.1"),
        # IPv6, canonical form; IPv4-mapped peers count as their IPv4 address.
        ("::1", ["2001:DB8:0:0::1"], LOOPBACK, "2001:db8::1"),
        ("::ffff:127.0.0.1", ["203.0.113.9"], LOOPBACK, "203.0.113.9"),
        ("fd00::2", ["203.0.113.9"], PROXIES, "203.0.113.9"),
        # A peer that is no address at all (a Unix socket): as given.
        ("unknown", ["203.0.113.9"], LOOPBACK, "unknown"),
    ],
)
def test_client_address_examples(peer: str, header: list[str], trusted: tuple[Network, ...], expected: str) -> None:
    assert client_address(peer, header, trusted) == expected


def test_networks_parse_cidrs_and_bare_addresses_and_refuse_the_rest() -> None:
    assert networks(("10.0.0.0/8", " ::1 ", "192.168.1.7/24")) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("192.168.1.0/24"),
    )
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        networks(("10.0.0.0/33",))
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        networks(("localhost",))


def test_parse_address_only_plain_addresses() -> None:
    assert parse_address(" 203.0.113.9 ") == ipaddress.ip_address("203.0.113.9")
    for text in ("203.0.113.9:80", "[::1]", "unknown", "", "1.2.3", "_hidden"):
        assert parse_address(text) is None


# --- properties -------------------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4)
untrusted = ipv4.filter(lambda a: not any(a in n for n in PROXIES if n.version == 4))
trusted_v4 = st.one_of(
    st.just(ipaddress.ip_address("127.0.0.1")),
    st.integers(0, 2**24 - 1).map(lambda i: ipaddress.IPv4Address(0x0A000000 + i)),
)
# Whatever a client may write: addresses, garbage, commas, empties.
forged_entry = st.one_of(
    st.ip_addresses().map(str), st.text(max_size=12), st.sampled_from(["", " ", "unknown", "1.2.3.4:5"])
)


@given(
    forged=st.lists(forged_entry, max_size=6),
    client=untrusted,
    hops=st.lists(trusted_v4, max_size=3),
    peer=trusted_v4,
)
def test_a_forged_address_left_of_the_real_one_never_wins(
    forged: list[str], client: ipaddress.IPv4Address, hops: list[ipaddress.IPv4Address], peer: ipaddress.IPv4Address
) -> None:
    # The client sends any X-Forwarded-For it likes; the first trusted proxy appends the client's
    # real address, and each trusted hop after it appends the one before.
    header = ", ".join([*forged, str(client), *map(str, hops)])
    assert client_address(str(peer), [header], PROXIES) == str(client)


@given(header=st.lists(forged_entry, max_size=6).map(", ".join), peer=untrusted)
def test_an_untrusted_peer_is_the_client_whatever_the_header(header: str, peer: ipaddress.IPv4Address) -> None:
    assert client_address(str(peer), [header], PROXIES) == str(peer)
    assert client_address(str(peer), [header], ()) == str(peer)


@given(header=st.lists(forged_entry, max_size=6).map(", ".join), peer=trusted_v4)
def test_the_answer_is_the_peer_or_an_untrusted_entry_or_all_were_trusted(
    header: str, peer: ipaddress.IPv4Address
) -> None:
    got = client_address(str(peer), [header], PROXIES)
    entries = [parse_address(e) for e in header.split(",")]
    assert got == str(peer) or any(str(e) == got for e in entries if e is not None)
