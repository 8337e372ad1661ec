"""The nftables script: one table, replaced atomically, with the rules each feature needs."""

from __future__ import annotations

from dockyard.network.firewall import FwNetwork, FwPort, render


def test_render_declares_deletes_and_redefines_the_table() -> None:
    script = render("dockyard", [], [])
    lines = script.splitlines()
    assert lines[:3] == ["table inet dockyard {}", "delete table inet dockyard",
                         "table inet dockyard {"]
    for hook in ("forward", "prerouting", "output", "postrouting"):
        assert f"hook {hook}" in script


def test_networks_are_isolated_and_masqueraded_unless_internal() -> None:
    script = render("t", [FwNetwork("br-a", "10.1.0.0/24"),
                          FwNetwork("br-b", "10.2.0.0/24", internal=True)], [])
    assert 'iifname "br-a" oifname { "br-b" } drop' in script
    assert 'iifname "br-b" oifname != "br-b" drop' in script
    assert 'oifname != "br-a" ip saddr 10.1.0.0/24 masquerade' in script
    assert 'ip saddr 10.2.0.0/24 masquerade' not in script.replace("ct status dnat ", "X")
    assert 'oifname "br-a" ip saddr 127.0.0.0/8 masquerade' in script


def test_published_ports_dnat_in_prerouting_and_output() -> None:
    script = render("t", [FwNetwork("br", "10.1.0.0/24")],
                    [FwPort("tcp", "127.0.0.1", 8080, "10.1.0.2", 80, "br"),
                     FwPort("udp", "0.0.0.0", 5353, "10.1.0.2", 53, "br")])
    assert script.count("ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.1.0.2:80") == 2
    assert script.count("fib daddr type local udp dport 5353 dnat ip to 10.1.0.2:53") == 2


def test_iptables_rendering_mirrors_the_nft_rules() -> None:
    from dockyard.network.iptables import render_iptables

    script = render_iptables("DOCKYARD", [FwNetwork("br-a", "10.1.0.0/24"),
                                          FwNetwork("br-b", "10.2.0.0/24", internal=True)],
                             [FwPort("tcp", "127.0.0.1", 8080, "10.1.0.2", 80, "br-a")])
    lines = script.splitlines()
    assert lines[:2] == ["*filter", ":DOCKYARD-FWD - [0:0]"]
    assert "-A DOCKYARD-FWD -i br-a -o br-b -j DROP" in lines
    assert "-A DOCKYARD-FWD -i br-b ! -o br-b -j DROP" in lines
    assert lines.index("-A DOCKYARD-FWD -i br-a -j ACCEPT") > lines.index("-A DOCKYARD-FWD -i br-a -o br-b -j DROP")
    assert "-A DOCKYARD-PRE -p tcp -d 127.0.0.1 --dport 8080 -j DNAT --to-destination 10.1.0.2:80" in lines
    assert "-A DOCKYARD-OUT -p tcp -d 127.0.0.1 --dport 8080 -j DNAT --to-destination 10.1.0.2:80" in lines
    assert "-A DOCKYARD-POST -s 10.1.0.0/24 ! -o br-a -j MASQUERADE" in lines
    assert not any(line.startswith("-A DOCKYARD-POST -s 10.2.0.0/24 ! -o") for line in lines)
    assert script.count("COMMIT") == 2
