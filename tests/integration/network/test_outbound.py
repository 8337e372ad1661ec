"""Outbound NAT and life next to dockerd's FORWARD DROP policy, inside a private "host".

The whole scenario runs in a fresh network namespace standing in for the host (its own
iptables FORWARD policy, its own ip_forward), with an "uplink" namespace standing in for the
outside world: 198.51.100.2, which has no route back to container subnets, so it can only
answer masqueraded traffic. Nothing touches the real host's firewall.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

pytestmark = pytest.mark.root

SCENARIO = textwrap.dedent("""
    import json, os, shutil, subprocess, sys, tempfile
    from pyroute2 import IPRoute, netns
    from dockyard.network import NetworkConfig, NetworkManager
    tag, backend = sys.argv[1], sys.argv[2]
    out = {}
    def sh(*argv):
        return subprocess.run(argv, capture_output=True, text=True)
    def ping(ns):
        return sh("ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "1",
                  "198.51.100.2").returncode == 0
    def forward_rules():
        return [l for l in sh("iptables", "-w", "-S", "FORWARD").stdout.splitlines()
                if "dockyard:" in l]
    made = []
    cfg = NetworkConfig(bip="10.77.0.1/24", bridge_name=f"dyt{tag}b0", bridge_prefix=f"dyt{tag}n",
                        veth_prefix=f"dyt{tag}v", fw_table=f"dyt_{tag}", firewall_backend=backend)
    state = tempfile.mkdtemp(prefix="dyt-out-")
    www = tempfile.mkdtemp(prefix="dyt-www-")
    nm = NetworkManager(state, cfg)
    try:
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        uplink = f"dyt-{tag}-up"
        netns.create(uplink); made.append(uplink)
        fd = os.open(f"/run/netns/{uplink}", os.O_RDONLY)
        with IPRoute() as ipr:
            ipr.link("add", ifname=f"dyt{tag}u", kind="veth",
                     peer={"ifname": "eth0", "net_ns_fd": fd})
            idx = ipr.link_lookup(ifname=f"dyt{tag}u")[0]
            ipr.addr("add", index=idx, address="198.51.100.1", prefixlen=30)
            ipr.link("set", index=idx, state="up")
        sh("ip", "-n", uplink, "addr", "add", "198.51.100.2/30", "dev", "eth0")
        sh("ip", "-n", uplink, "link", "set", "eth0", "up")
        sh("ip", "-n", uplink, "link", "set", "lo", "up")
        sh("iptables", "-w", "-P", "FORWARD", "DROP")          # what dockerd does
        nm.start()
        nm.create_network("sealed", subnet="10.78.0.0/24", internal=True)
        c1, c2 = f"dyt-{tag}-c1", f"dyt-{tag}-c2"
        for name in (c1, c2):
            netns.create(name); made.append(name)
        nm.attach("a" * 64, f"/run/netns/{c1}", "bridge")
        nm.attach("b" * 64, f"/run/netns/{c2}", "sealed")
        out["compat_rules"] = len(forward_rules())
        out["outbound"] = ping(c1)
        out["internal_outbound"] = ping(c2)
        with open(f"{www}/index.html", "w") as f:
            f.write("published-" + tag)
        httpd = subprocess.Popen(["ip", "netns", "exec", c1, "busybox", "httpd", "-f", "-p", "80", "-h", www])
        from dockyard.network.ports import parse_port_spec
        nm.publish("a" * 64, "bridge", parse_port_spec("127.0.0.1:18099:80"))
        import time
        page = ""
        for _ in range(30):
            page = sh("sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 127.0.0.1 18099").stdout
            if "published-" in page:
                break
            time.sleep(0.1)
        out["published"] = "published-" + tag in page
        httpd.kill()
        if backend == "nft":
            for rule in forward_rules():
                sh("iptables", "-w", "-D", *[a.strip(chr(34)) for a in rule.split()[1:]])
        else:
            sh("iptables", "-w", "-D", "FORWARD", "-j", cfg.fw_table.upper() + "-FWD")
        out["outbound_without_compat"] = ping(c1)
        nm.shutdown()
        out["rules_after_shutdown"] = len(forward_rules()) + len(
            [l for l in sh("iptables-save").stdout.splitlines() if cfg.fw_table.upper() in l])
        out["table_after_shutdown"] = sh("nft", "list", "table", "inet", cfg.fw_table).returncode
    finally:
        nm.destroy_all()
        for name in made:
            netns.remove(name)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)
    print(json.dumps(out))
""")


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_outbound_nat_and_forward_drop_compat(backend: str) -> None:
    from pyroute2 import netns

    tag = uuid.uuid4().hex[:6]
    host = f"dyt-{tag}-host"
    netns.create(host)
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", SCENARIO, tag, backend],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        netns.remove(host)
    if backend == "nft":
        assert out["compat_rules"] == 4             # -i/-o for each of the two bridges
    assert out["outbound"] is True                  # masqueraded, accepted despite DROP
    assert out["internal_outbound"] is False        # --internal stays sealed
    assert out["published"] is True                 # DNAT from the host loopback
    assert out["outbound_without_compat"] is False  # our ACCEPTs are what made it work
    assert out["rules_after_shutdown"] == 0
    assert out["table_after_shutdown"] != 0
