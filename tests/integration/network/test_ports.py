"""Published ports through the kernel's NAT: reachable from the host's loopback, all or nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from dockyard.errors import Conflict
from dockyard.network.ports import parse_port_spec
from tests.integration.network.conftest import NetEnv

pytestmark = pytest.mark.root

CID1, CID2 = "d4" * 32, "e5" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int, attempts: int = 50) -> str | None:
    """GET / through the published port; None if nothing answers (after a readiness wait)."""
    for _ in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
                return data.decode(errors="replace")
        except OSError:
            time.sleep(0.1)
    return None


@pytest.fixture
def httpd(netenv: NetEnv, tmp_path: object) -> Iterator[tuple[str, str]]:
    """A busybox httpd on port 80 in a fresh netns; yields (netns path, page marker)."""
    ns = netenv.netns()
    root = os.path.join(str(tmp_path), "www")
    os.makedirs(root)
    marker = f"hello-{netenv.tag}"
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write(marker)
    name = os.path.basename(ns)
    proc = subprocess.Popen(["ip", "netns", "exec", name, "busybox", "httpd", "-f", "-p", "80",
                             "-h", root])
    try:
        yield ns, marker
    finally:
        proc.kill()
        proc.wait()


def nft_rules(netenv: NetEnv) -> str:
    return subprocess.run(["nft", "list", "table", "inet", netenv.config.fw_table],
                          capture_output=True, text=True).stdout


def test_published_port_answers_on_loopback_until_unpublished(netenv: NetEnv, httpd: tuple[str, str]) -> None:
    ns, marker = httpd
    netenv.nm.attach(CID1, ns, "bridge")
    port = free_port()
    got = netenv.nm.publish(CID1, "bridge", parse_port_spec(f"127.0.0.1:{port}:80"))
    assert [(b.host_ip, b.host_port, b.container_port) for b in got] == [("127.0.0.1", port, 80)]
    page = fetch(port)
    assert page is not None and marker in page
    netenv.nm.unpublish(CID1)
    assert fetch(port, attempts=1) is None
    assert f"dport {port}" not in nft_rules(netenv)


def test_port_on_all_addresses_and_ephemeral_port(netenv: NetEnv, httpd: tuple[str, str]) -> None:
    ns, marker = httpd
    netenv.nm.attach(CID1, ns, "bridge")
    (binding,) = netenv.nm.publish(CID1, "bridge", parse_port_spec("80"))
    assert binding.host_ip == "0.0.0.0" and binding.host_port > 0
    page = fetch(binding.host_port)
    assert page is not None and marker in page
    assert netenv.nm.ports(CID1) == [binding]


def test_port_in_use_is_refused_and_leaves_nothing(netenv: NetEnv) -> None:
    netenv.nm.attach(CID1, netenv.netns(), "bridge")
    netenv.nm.attach(CID2, netenv.netns(), "bridge")
    taken, mine = free_port(), free_port()
    netenv.nm.publish(CID1, "bridge", parse_port_spec(f"127.0.0.1:{mine}:80"))
    holder = socket.socket()
    holder.bind(("127.0.0.1", taken))
    holder.listen(1)
    try:
        before = nft_rules(netenv)
        free = free_port()
        # the first spec would succeed: it must be rolled back with the failing one
        with pytest.raises(Conflict, match=rf"^Bind for 127.0.0.1:{taken} failed: port is already allocated$"):
            netenv.nm.publish(CID2, "bridge", parse_port_spec(f"127.0.0.1:{free}:81")
                              + parse_port_spec(f"127.0.0.1:{taken}:80"))
        with pytest.raises(Conflict, match=rf"^Bind for 0.0.0.0:{mine} failed: port is already allocated$"):
            netenv.nm.publish(CID2, "bridge", parse_port_spec(f"{mine}:80"))
        assert nft_rules(netenv) == before
        assert netenv.nm.ports(CID2) == []
        assert netenv.manager().ports(CID2) == []
        with socket.socket() as probe:      # the rolled-back port was released
            probe.bind(("127.0.0.1", free))
    finally:
        holder.close()


def test_port_range_publishes_each_port(netenv: NetEnv) -> None:
    netenv.nm.attach(CID1, netenv.netns(), "bridge")
    first = free_port()
    specs = parse_port_spec(f"127.0.0.1:{first}-{first + 1}:8080-8081/udp")
    try:
        got = netenv.nm.publish(CID1, "bridge", specs)
    except Conflict as exc:
        # skip only when another process really holds one of the two ports; a Conflict of ours fails
        busy = []
        for port in (first, first + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(port)
        if not busy:
            raise AssertionError(f"publish refused free ports {first}-{first + 1}: {exc}") from exc
        pytest.skip(f"port {busy[0]} happened to be busy")
    assert [(b.host_port, b.container_port, b.proto) for b in got] == [
        (first, 8080, "udp"), (first + 1, 8081, "udp")]
    rules = nft_rules(netenv)
    assert f"udp dport {first}" in rules and f"udp dport {first + 1}" in rules


def test_ports_are_reserved_again_after_restart(netenv: NetEnv) -> None:
    netenv.nm.attach(CID1, netenv.netns(), "bridge")
    port = free_port()
    netenv.nm.publish(CID1, "bridge", parse_port_spec(f"127.0.0.1:{port}:80"))
    netenv.nm.shutdown()                       # the daemon stops: table and sockets go
    assert f"dport {port}" not in nft_rules(netenv)
    restarted = netenv.manager()
    restarted.start()
    try:
        assert f"dport {port}" in nft_rules(netenv)
        with pytest.raises(OSError), socket.socket() as s:
            s.bind(("127.0.0.1", port))
    finally:
        restarted.shutdown()


def test_userland_proxy_serves_when_the_firewall_is_off(netenv: NetEnv, httpd: tuple[str, str]) -> None:
    import asyncio
    import dataclasses

    from dockyard.network import NetworkManager
    from dockyard.network.proxy import PortProxy

    ns, marker = httpd
    cfg = dataclasses.replace(netenv.config, manage_firewall=False)
    nm = NetworkManager(netenv.state_dir, cfg)    # "iptables": false: no NAT rules at all
    nm.attach(CID1, ns, "bridge")
    port = free_port()
    nm.publish(CID1, "bridge", parse_port_spec(f"127.0.0.1:{port}:80"))
    assert f"dport {port}" not in nft_rules(netenv)

    async def scenario() -> tuple[str | None, str | None]:
        proxy = PortProxy()
        for binding, sock, target in nm.listeners(CID1):
            await proxy.add(binding.proto, sock, target)
        served = await asyncio.to_thread(fetch, port)
        await proxy.remove("tcp", "127.0.0.1", port)
        await proxy.close()
        nm.unpublish(CID1)
        after = await asyncio.to_thread(fetch, port, 1)
        return served, after

    served, after = asyncio.run(scenario())
    assert served is not None and marker in served
    assert after is None


def test_userland_proxy_relays_udp(netenv: NetEnv) -> None:
    import asyncio
    import dataclasses
    import sys

    from dockyard.network import NetworkManager
    from dockyard.network.proxy import PortProxy

    ns = netenv.netns()
    echo = subprocess.Popen(["ip", "netns", "exec", os.path.basename(ns), sys.executable, "-c",
                             "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                             "s.bind(('0.0.0.0',5353))\nwhile True:\n d,a=s.recvfrom(512);s.sendto(b'echo:'+d,a)\n"])
    try:
        nm = NetworkManager(netenv.state_dir, dataclasses.replace(netenv.config, manage_firewall=False))
        nm.attach(CID2, ns, "bridge")
        port = free_port()
        nm.publish(CID2, "bridge", parse_port_spec(f"127.0.0.1:{port}:5353/udp"))

        async def scenario() -> bytes:
            proxy = PortProxy()
            for binding, sock, target in nm.listeners(CID2):
                await proxy.add(binding.proto, sock, target)
            loop = asyncio.get_running_loop()
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.setblocking(False)
            try:
                for _ in range(50):            # until the echo server is up
                    client.sendto(b"ping", ("127.0.0.1", port))
                    try:
                        return await asyncio.wait_for(loop.sock_recv(client, 512), 0.2)
                    except TimeoutError:
                        continue
                return b""
            finally:
                client.close()
                await proxy.close()

        assert asyncio.run(scenario()) == b"echo:ping"
        nm.unpublish(CID2)
    finally:
        echo.kill()
        echo.wait()


def test_container_reaches_its_own_published_port_through_the_host(netenv: NetEnv, httpd: tuple[str, str]) -> None:
    ns, marker = httpd
    ep = netenv.nm.attach(CID1, ns, "bridge")
    port = free_port()
    netenv.nm.publish(CID1, "bridge", parse_port_spec(f"{port}:80"))
    fetch(port)                      # wait until httpd answers
    out = netenv.run(ns, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {ep.gateway} {port}")
    assert marker in out.stdout, out.stderr
