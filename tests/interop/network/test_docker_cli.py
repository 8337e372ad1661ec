"""Networking through the real docker CLI: the same checks against Dockyard and dockerd."""

from __future__ import annotations

import pytest

from tests.interop.network.conftest import Daemon

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.root]

HTTPD = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def fetch(d: Daemon, port: int) -> str:
    """GET / on the daemon's host loopback (busybox nc; its wget segfaults here)."""
    out = ""
    for _ in range(30):
        proc = d.on_host("sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 127.0.0.1 {port}")
        out = proc.stdout
        if "hello-" in out:
            return out
        d.on_host("sleep", "0.2")
    return out


def refused(d: Daemon, *args: str, words: str) -> None:
    """The command fails and its error says ``words``."""
    proc = d.docker(*args)
    assert proc.returncode != 0 and words in proc.stderr, (args, proc.stdout, proc.stderr)


def test_container_gets_address_and_default_route(daemon: Daemon) -> None:
    out = daemon.ok("run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0; ip route")
    assert "inet 172.30.9." in out
    assert "default via 172.30.9.1 dev eth0" in out


def test_published_port_answers_until_removed(daemon: Daemon) -> None:
    daemon.ok("run", "-d", "--name", "web", "--hostname", "pub", "-p", "127.0.0.1:18080:80",
              "busybox", "sh", "-c", HTTPD)
    try:
        assert "hello-pub" in fetch(daemon, 18080)
        assert daemon.ok("port", "web") == "80/tcp -> 127.0.0.1:18080"
        assert "127.0.0.1:18080->80/tcp" in daemon.ok("ps", "--format", "{{.Ports}}")
    finally:
        daemon.ok("rm", "-f", "web")
    proc = daemon.on_host("sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 127.0.0.1 18080")
    assert "hello-" not in proc.stdout


def test_port_in_use_is_refused(daemon: Daemon) -> None:
    daemon.ok("run", "-d", "--name", "first", "-p", "127.0.0.1:18081:80", "busybox", "sleep", "60")
    try:
        refused(daemon, "run", "-d", "--name", "second", "-p", "127.0.0.1:18081:80", "busybox",
                "sleep", "60", words="port is already allocated")
    finally:
        daemon.docker("rm", "-f", "first", "second")


def test_user_network_names_resolve_and_networks_are_isolated(daemon: Daemon) -> None:
    daemon.ok("network", "create", "appnet")
    daemon.ok("network", "create", "othernet")
    try:
        daemon.ok("run", "-d", "--name", "db", "--network", "appnet", "--network-alias", "database",
                  "busybox", "sleep", "120")
        daemon.ok("run", "-d", "--name", "far", "--network", "othernet", "busybox", "sleep", "120")
        by_name = daemon.docker("run", "--rm", "--network", "appnet", "busybox",
                                "ping", "-c", "1", "-W", "2", "db")
        assert by_name.returncode == 0, by_name.stdout + by_name.stderr
        by_alias = daemon.docker("run", "--rm", "--network", "appnet", "busybox",
                                 "ping", "-c", "1", "-W", "2", "database")
        assert by_alias.returncode == 0, by_alias.stdout + by_alias.stderr
        far_ip = daemon.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "far")
        assert far_ip
        crossing = daemon.docker("run", "--rm", "--network", "appnet", "busybox",
                                 "ping", "-c", "1", "-W", "1", far_ip)
        assert crossing.returncode != 0
        refused(daemon, "network", "rm", "appnet", words="active endpoints")
    finally:
        daemon.docker("rm", "-f", "db", "far")
        daemon.docker("network", "rm", "appnet", "othernet")


def test_none_and_host_modes(daemon: Daemon) -> None:
    none = daemon.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in none.splitlines()] == ["lo"]
    host_links = daemon.on_host("ip", "-o", "link").stdout
    in_host = daemon.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert {line.split(":")[1].strip() for line in in_host.splitlines()} == {
        line.split(":")[1].strip() for line in host_links.splitlines()}


def test_overlapping_subnet_is_refused(daemon: Daemon) -> None:
    daemon.ok("network", "create", "--subnet", "10.211.0.0/16", "wide")
    try:
        refused(daemon, "network", "create", "--subnet", "10.211.5.0/24", "narrow",
                words="overlaps")
    finally:
        daemon.docker("network", "rm", "wide", "narrow")


def test_connect_a_running_container_to_a_second_network(daemon: Daemon) -> None:
    daemon.ok("network", "create", "net1")
    daemon.ok("network", "create", "net2")
    try:
        daemon.ok("run", "-d", "--name", "alpha", "--network", "net1", "busybox", "sleep", "120")
        daemon.ok("run", "-d", "--name", "beta", "--network", "net2", "busybox", "sleep", "120")
        before = daemon.docker("run", "--rm", "--network", "net2", "busybox", "ping", "-c", "1", "-W", "1", "alpha")
        assert before.returncode != 0
        daemon.ok("network", "connect", "net2", "alpha")
        after = daemon.docker("run", "--rm", "--network", "net2", "busybox", "ping", "-c", "1", "-W", "2", "alpha")
        assert after.returncode == 0, after.stdout + after.stderr
        nets = daemon.ok("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "alpha")
        assert nets.split() == ["net1", "net2"]
        daemon.ok("network", "disconnect", "net2", "alpha")
        gone = daemon.docker("run", "--rm", "--network", "net2", "busybox", "ping", "-c", "1", "-W", "1", "alpha")
        assert gone.returncode != 0
    finally:
        daemon.docker("rm", "-f", "alpha", "beta")
        daemon.docker("network", "rm", "net1", "net2")


def test_container_mode_shares_the_other_containers_network(daemon: Daemon) -> None:
    daemon.ok("run", "-d", "--name", "holder", "busybox", "sleep", "120")
    try:
        ip = daemon.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "holder")
        out = daemon.ok("run", "--rm", "--network", "container:holder", "busybox", "ip", "-4", "-o", "addr")
        assert f"inet {ip}/" in out
        refused(daemon, "run", "--rm", "--network", "container:nosuchthing", "busybox", "true",
                words="docker: Error response from daemon: No such container: nosuchthing\n")
        refused(daemon, "run", "--rm", "--network", "nosuchnet", "busybox", "true",
                words="docker: Error response from daemon: network nosuchnet not found\n")
    finally:
        daemon.docker("rm", "-f", "holder")


def test_add_host_and_host_gateway(daemon: Daemon) -> None:
    hosts = daemon.ok("run", "--rm", "--add-host", "db.local:10.9.8.7", "--add-host",
                      "gw:host-gateway", "busybox", "cat", "/etc/hosts")
    assert "10.9.8.7\tdb.local" in hosts
    assert "172.30.9.1\tgw" in hosts


def test_network_survives_a_daemon_restart(daemon: Daemon) -> None:
    """Live restore: running containers keep address, published port and DNS names."""
    if daemon.kind == "reference":
        pytest.skip("dockerd stops containers on shutdown unless live-restore is configured")
    daemon.ok("network", "create", "keep")
    try:
        daemon.ok("run", "-d", "--name", "kweb", "--hostname", "kept", "--network", "keep",
                  "-p", "127.0.0.1:18082:80", "busybox", "sh", "-c", HTTPD)
        daemon.ok("run", "-d", "--name", "kpeer", "--network", "keep", "busybox", "sleep", "300")
        assert "hello-kept" in fetch(daemon, 18082)
        ip = daemon.ok("inspect", "-f", "{{.NetworkSettings.Networks.keep.IPAddress}}", "kweb")
        daemon.restart()
        assert daemon.ok("inspect", "-f", "{{.NetworkSettings.Networks.keep.IPAddress}}", "kweb") == ip
        assert "hello-kept" in fetch(daemon, 18082)
        resolved = daemon.docker("exec", "kpeer", "ping", "-c", "1", "-W", "2", "kweb")
        assert resolved.returncode == 0, resolved.stdout + resolved.stderr
        new = daemon.ok("run", "--rm", "--network", "keep", "busybox", "ip", "-4", "-o", "addr", "show", "eth0")
        assert f"inet {ip}/" not in new      # the restored allocation is still taken
    finally:
        daemon.docker("rm", "-f", "kweb", "kpeer")
        daemon.docker("network", "rm", "keep")


def test_publish_all_exposed_ports(daemon: Daemon) -> None:
    daemon.ok("run", "-d", "--name", "pall", "--hostname", "every", "-P", "--expose", "80",
              "busybox", "sh", "-c", HTTPD)
    try:
        lines = daemon.ok("port", "pall", "80/tcp").splitlines()
        v4 = [line for line in lines if line.startswith("0.0.0.0:")]
        assert v4, lines
        assert "hello-every" in fetch(daemon, int(v4[0].rsplit(":", 1)[1]))
    finally:
        daemon.docker("rm", "-f", "pall")
