"""Network benchmark: what a bridge endpoint costs, and published-port throughput on loopback.

1. attach latency -- ``NetworkManager.attach`` + ``detach`` of a stand-in container (a named
   netns) on the default bridge, against doing nothing (``--network none`` creates the same
   netns, so its extra cost is zero). Median and p90 over ``--runs``.
2. published-port throughput -- a client on the host streams ``--mb`` MB to 127.0.0.1:<port>,
   published to a sink in a netns:
     * Dockyard kernel NAT (DNAT with route_localnet, the default path),
     * Dockyard's userland proxy (the in-daemon asyncio relay, "iptables": false),
     * direct to the container address (the ceiling),
     * Docker's docker-proxy, if ``--docker`` is given and dockerd 20.10 can be started (a
       private instance on its own bridge, socket and data root, --iptables=false: loopback
       clients go through docker-proxy in Docker 20.10 either way).

3. end to end (``--e2e``) -- ``docker run --rm busybox true`` with the default bridge against
   ``--network none``, through our daemon and through dockerd 20.10, each daemon in a private
   network namespace (as in tests/interop/network); the difference is what bridge costs.

Run as root: ``.venv/bin/python bench/network_bench.py [--runs 50] [--mb 512] [--docker] [--e2e]``.
Everything it creates carries the prefix ``dyb`` and is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyroute2 import netns

from dockyard.network import NetworkConfig, NetworkManager
from dockyard.network.ports import parse_port_spec
from dockyard.network.proxy import PortProxy

SINK = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',9000));s.listen(8)\nwhile True:\n c,_=s.accept()\n"
        " while c.recv(1<<20): pass\n c.sendall(b'k');c.close()\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream(host: str, port: int, mb: int) -> float:
    """MB/s sending ``mb`` MB and waiting for the sink's ack."""
    chunk = b"x" * (1 << 20)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock:
        start = time.perf_counter()
        for _ in range(mb):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)
        return mb / (time.perf_counter() - start)


def bench_attach(nm: NetworkManager, tag: str, runs: int) -> None:
    attach, detach = [], []
    for i in range(runs):
        name = f"dyb-{tag}-{i}"
        netns.create(name)
        try:
            t0 = time.perf_counter()
            nm.attach(f"{i:064x}", f"/run/netns/{name}", "bridge")
            t1 = time.perf_counter()
            nm.detach(f"{i:064x}", "bridge")
            t2 = time.perf_counter()
        finally:
            netns.remove(name)
        attach.append((t1 - t0) * 1000)
        detach.append((t2 - t1) * 1000)
    gone = []
    for i in range(runs):
        name = f"dyb-{tag}-g{i}"
        netns.create(name)
        nm.attach(f"{i:064x}", f"/run/netns/{name}", "bridge")
        netns.remove(name)            # the container exited: its netns (and veth) go away
        t0 = time.perf_counter()
        nm.detach(f"{i:064x}", "bridge")
        gone.append((time.perf_counter() - t0) * 1000)
    for label, data in (("attach", attach), ("detach", detach), ("det-dead", gone)):
        data.sort()
        print(f"bridge {label:7s} median {statistics.median(data):6.2f} ms   "
              f"p90 {data[int(len(data) * 0.9) - 1]:6.2f} ms   (none: 0 ms; n={runs})")


def bench_ports(nm: NetworkManager, tag: str, mb: int, runs: int) -> None:
    name = f"dyb-{tag}-p"
    netns.create(name)
    sink = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", SINK])
    try:
        cid = "f" * 64
        ep = nm.attach(cid, f"/run/netns/{name}", "bridge")
        port = free_port()
        nm.publish(cid, "bridge", parse_port_spec(f"127.0.0.1:{port}:9000"))

        def best(host: str, p: int) -> float:
            return max(stream(host, p, mb) for _ in range(runs))

        print(f"direct to container    {best(ep.ip, 9000):8.0f} MB/s")
        print(f"dockyard kernel NAT    {best('127.0.0.1', port):8.0f} MB/s")
        nm.unpublish(cid)
        cfg = dataclasses.replace(nm.config, manage_firewall=False)
        nm2 = NetworkManager(nm.state_dir, cfg)
        port2 = free_port()
        nm2.publish(cid, "bridge", parse_port_spec(f"127.0.0.1:{port2}:9000"))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        proxy = PortProxy()
        for binding, sock, target in nm2.listeners(cid):
            asyncio.run_coroutine_threadsafe(proxy.add(binding.proto, sock, target), loop).result()
        print(f"dockyard userland proxy{best('127.0.0.1', port2):8.0f} MB/s")
        asyncio.run_coroutine_threadsafe(proxy.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        nm2.unpublish(cid)
        nm.detach(cid, "bridge")
    finally:
        sink.kill()
        sink.wait()
        netns.remove(name)


def bench_docker(tag: str, mb: int, runs: int) -> None:
    from tests.support import busybox

    dockerd = shutil.which("dockerd")
    if dockerd is None:
        print("docker-proxy: dockerd is not installed; not measured")
        return
    root = tempfile.mkdtemp(prefix="dyb-docker-")
    sock = os.path.join(root, "docker.sock")
    bridge = f"dyb{tag}d"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.199.77.1/24", "dev", bridge], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    log = open(f"{root}/log", "w")  # noqa: SIM115 -- closed in the finally below
    proc = subprocess.Popen([dockerd, "--data-root", f"{root}/data", "--exec-root", f"{root}/exec",
                             "--pidfile", f"{root}/pid", "-H", f"unix://{sock}", "-b", bridge,
                             "--iptables=false", "--ip6tables=false"],
                            stdout=subprocess.DEVNULL, stderr=log,
                            start_new_session=True)
    try:
        for _ in range(100):
            if subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            print("docker-proxy: dockerd did not start; not measured")
            return
        rootfs = busybox.make_rootfs(os.path.join(root, "rootfs"))
        with open(os.path.join(root, "bb.tar"), "wb") as f:
            f.write(busybox.layer_tar_bytes(rootfs))
        subprocess.run(["docker", "import", os.path.join(root, "bb.tar"), "dyb-busybox"], env=env,
                       check=True, capture_output=True)
        port = free_port()
        # the same Python sink as above: the host's root mounted read-only, chrooted into
        cid = subprocess.run(["docker", "run", "-d", "-p", f"127.0.0.1:{port}:9000",
                              "-v", "/:/host:ro", "dyb-busybox",
                              "chroot", "/host", sys.executable, "-c", SINK],
                             env=env, check=True, capture_output=True, text=True).stdout.strip()
        try:
            time.sleep(0.5)
            rates = []
            for _ in range(runs):
                rates.append(stream("127.0.0.1", port, mb))
            print(f"docker-proxy (20.10)   {max(rates):8.0f} MB/s")
            ip = subprocess.run(["docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid],
                                env=env, capture_output=True, text=True).stdout.strip()
            print(f"docker direct to ctr   {max(stream(ip, 9000, mb) for _ in range(runs)):8.0f} MB/s")
        finally:
            subprocess.run(["docker", "rm", "-f", cid], env=env, capture_output=True)
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(["umount", "-R", f"{root}/exec"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def bench_e2e(runs: int) -> None:
    import contextlib

    from tests.interop.network.conftest import _start

    for kind in ("dockyard", "reference"):
        try:
            with contextlib.contextmanager(_start)(kind) as d:
                d.ok("run", "--rm", "busybox", "true")          # warm caches
                times: dict[str, list[float]] = {"none": [], "bridge": []}
                for _ in range(runs):
                    for mode in ("none", "bridge"):
                        t0 = time.perf_counter()
                        d.ok("run", "--rm", "--network", mode, "busybox", "true")
                        times[mode].append((time.perf_counter() - t0) * 1000)
                med = {m: statistics.median(v) for m, v in times.items()}
                print(f"{kind:9s} docker run --rm: none {med['none']:6.0f} ms  bridge "
                      f"{med['bridge']:6.0f} ms  extra {med['bridge'] - med['none']:+5.0f} ms (n={runs})")
        except Exception as exc:  # pytest.skip inside the fixture code, or a daemon failure
            print(f"{kind}: not measured ({type(exc).__name__}: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--mb", type=int, default=512)
    parser.add_argument("--docker", action="store_true", help="also measure docker-proxy")
    parser.add_argument("--e2e", action="store_true", help="docker run with bridge vs none")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:5]
    state = tempfile.mkdtemp(prefix="dyb-net-")
    net = ipaddress.ip_network("10.199.66.0/24")
    cfg = NetworkConfig(bip=f"{net.network_address + 1}/24", bridge_name=f"dyb{tag}b",
                        bridge_prefix=f"dyb{tag}n", veth_prefix=f"dyb{tag}v", fw_table=f"dyb_{tag}")
    nm = NetworkManager(state, cfg)
    nm.start()
    try:
        bench_attach(nm, tag, args.runs)
        bench_ports(nm, tag, args.mb, max(1, args.runs // 25))
    finally:
        nm.destroy_all()
        shutil.rmtree(state, ignore_errors=True)
    if args.docker:
        bench_docker(tag, args.mb, max(1, args.runs // 25))
    if args.e2e:
        bench_e2e(max(3, args.runs // 5))


if __name__ == "__main__":
    main()
