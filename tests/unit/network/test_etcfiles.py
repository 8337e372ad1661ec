"""/etc/resolv.conf, /etc/hosts and /etc/hostname contents."""

from __future__ import annotations

import os

from dockyard.network.etcfiles import (
    ResolvConf,
    hostname_file,
    hosts_file,
    parse_resolv_conf,
    read_host_resolv_conf,
    resolv_conf_file,
)

HOST = ResolvConf(("127.0.0.53", "10.0.0.2", "fd00::1"), ("corp.example",), ("edns0",))


def test_default_bridge_drops_loopback_and_ipv6_resolvers() -> None:
    assert resolv_conf_file(HOST) == "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"


def test_no_usable_resolver_falls_back_to_googles() -> None:
    text = resolv_conf_file(ResolvConf(("127.0.0.1",)))
    assert text == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_user_networks_use_the_embedded_server() -> None:
    text = resolv_conf_file(HOST, embedded=True, dns=["1.1.1.1"])
    assert text == "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n"


def test_dns_flags_replace_host_values() -> None:
    text = resolv_conf_file(HOST, dns=["9.9.9.9"], dns_search=["a.test"], dns_options=["ndots:2"])
    assert text == "nameserver 9.9.9.9\nsearch a.test\noptions ndots:2\n"


def test_systemd_resolved_stub_is_replaced_by_its_upstreams(tmp_path: object) -> None:
    stub = os.path.join(str(tmp_path), "resolv.conf")
    real = os.path.join(str(tmp_path), "real.conf")
    with open(stub, "w") as f:
        f.write("# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n")
    with open(real, "w") as f:
        f.write("nameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    conf = read_host_resolv_conf(stub, real)
    assert conf.nameservers == ("192.0.2.53", "192.0.2.54")
    assert conf.search == ("lan",) and conf.options == ("edns0", "trust-ad")


def test_parse_ignores_comments_and_keeps_last_search() -> None:
    conf = parse_resolv_conf("nameserver 1.2.3.4 # x\n; c\nsearch a b\ndomain c\n")
    assert conf.nameservers == ("1.2.3.4",) and conf.search == ("c",)


def test_hosts_file_like_dockers() -> None:
    text = hosts_file("abc123", ["172.18.0.2"], extra_hosts=["db:10.0.0.9"])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[1] == "::1\tlocalhost ip6-localhost ip6-loopback"
    assert lines[-2:] == ["10.0.0.9\tdb", "172.18.0.2\tabc123"]
    assert hostname_file("abc123") == "abc123\n"
