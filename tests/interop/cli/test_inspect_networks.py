"""``NetworkSettings.Networks`` of containers that are not running, ours against dockerd 20.10.

docker-compose and other tools read a created container's networks before starting it. The same
scenario (driven with our CLI) runs on the reference dockerd, then on our daemon (one after the
other: both make a bridge for the user-defined network), and the raw documents ``docker
inspect`` prints are compared, each daemon's ids replaced by names.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.interop.cli.conftest import Engine, uniq

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.xdist_group("cli-daemons")]


def _networks(engine: Engine, names: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """Each container's ``NetworkSettings`` (``docker inspect`` prints the API's document), with
    the ids and names in ``labels`` and each container's (short) id replaced by ``<label>``."""
    out = {}
    for role, name in names.items():
        proc = engine.docker("inspect", name)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)[0]
        text = json.dumps(doc["NetworkSettings"])
        for literal, label in [*labels.items(), (doc["Id"], role), (doc["Id"][:12], role)]:
            text = re.sub(rf"\b{re.escape(literal)}\b", f"<{label}>", text)
        out[role] = json.loads(text)
    return out


def _scenario(engine: Engine, subnet: str) -> tuple[dict[str, Any], ...]:
    """Create containers on each kind of network, inspect; run and stop them, inspect again;
    disconnect a created container and connect it again as docker-compose 1.x does."""
    tag = uniq("nets")
    net = f"{tag}-user"
    names = {"default": f"{tag}-default", "bridge": f"{tag}-bridge", "none": f"{tag}-none",
             "host": f"{tag}-host", "user": f"{tag}-user-c", "aliased": f"{tag}-aliased",
             "shared": f"{tag}-shared", "compose": f"{tag}-compose"}
    labels = {engine.ok("network", "create", "--internal", "--subnet", f"{subnet}.0/24",
                        net).strip(): "net-id", net: "net"}
    for name in ("host", "none"):
        labels[engine.ok("network", "inspect", "-f", "{{.Id}}", name).strip()] = f"{name}-id"
    try:
        engine.ok("create", "--name", names["default"], "busybox", "sleep", "300")
        engine.ok("create", "--name", names["bridge"], "--network", "bridge", "busybox", "true")
        for role in ("none", "host"):
            engine.ok("create", "--name", names[role], "--network", role, "busybox", "sleep", "300")
        engine.ok("create", "--name", names["user"], "--network", net, "busybox", "sleep", "300")
        engine.ok("create", "--name", names["aliased"], "--network", net, "--network-alias", "web",
                  "--ip", f"{subnet}.77", "busybox", "sleep", "300")
        engine.ok("create", "--name", names["shared"], "--network",
                  f"container:{names['default']}", "busybox", "true")
        engine.ok("create", "--name", names["compose"], "--network", net, "busybox", "true")
        created = _networks(engine, names, labels)
        engine.ok("network", "disconnect", net, names["compose"])
        left = _networks(engine, {"compose": names["compose"]}, labels)
        engine.ok("network", "connect", "--alias", "svc", net, names["compose"])
        rejoined = _networks(engine, {"compose": names["compose"]}, labels)

        # the default bridge is left out here: the reference runs with --bridge=none
        ran = {k: v for k, v in names.items() if k in ("none", "host", "user", "aliased")}
        for name in ran.values():
            engine.ok("start", name)
        for name in ran.values():
            engine.ok("stop", "-t", "0", name)
        stopped = _networks(engine, ran, labels)
    finally:
        for name in names.values():
            engine.dy("rm", "-f", name)
        engine.dy("network", "rm", net)
    return created, stopped, left, rejoined


def _empty(**changes: Any) -> dict[str, Any]:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "",
            "DriverOpts": None, **changes}


def test_inspect_networks_of_created_and_stopped_containers(reference_dockerd: Engine,
                                                            dockyard_daemon: Engine) -> None:
    ref_created, ref_stopped, ref_left, ref_rejoined = _scenario(reference_dockerd, "10.211.9")
    our_created, our_stopped, our_left, our_rejoined = _scenario(dockyard_daemon, "10.211.9")

    # what dockerd shows (spelled out, so that a change on either side is seen)
    assert {role: doc["Networks"] for role, doc in ref_created.items()} == {
        "default": {"bridge": _empty()}, "bridge": {"bridge": _empty()},
        "none": {"none": _empty()}, "host": {"host": _empty()}, "user": {"<net>": _empty()},
        "aliased": {"<net>": _empty(IPAMConfig={"IPv4Address": "10.211.9.77"},
                                    Aliases=["web"])},
        "shared": {}, "compose": {"<net>": _empty()}}
    for doc in ref_created.values():
        assert (doc["IPAddress"], doc["EndpointID"], doc["SandboxKey"], doc["Ports"]) == (
            "", "", "", {})
    assert {role: doc["Networks"] for role, doc in ref_stopped.items()} == {
        "none": {"none": _empty(NetworkID="<none-id>")},
        "host": {"host": _empty(NetworkID="<host-id>")},
        "user": {"<net>": _empty(NetworkID="<net-id>", Aliases=["<user>"])},
        "aliased": {"<net>": _empty(NetworkID="<net-id>", Aliases=["web", "<aliased>"],
                                    IPAMConfig={"IPv4Address": "10.211.9.77"})}}

    assert ref_left["compose"]["Networks"] == {}
    # (dockerd echoes the EndpointConfig a connect sent: our CLI, like docker-py, sends no
    # IPAMConfig/DriverOpts without --ip/--driver-opt; the docker CLI sends empty ones)
    assert ref_rejoined["compose"]["Networks"] == {"<net>": _empty(
        Aliases=["svc", "<compose>"])}

    # and ours, the same
    assert our_left == ref_left
    assert our_rejoined == ref_rejoined
    assert our_created == ref_created
    for role, doc in ref_stopped.items():
        # dockerd also keeps a stale SandboxID/SandboxKey after a stop; we show none
        assert {k: v for k, v in our_stopped[role].items() if not k.startswith("Sandbox")} == \
            {k: v for k, v in doc.items() if not k.startswith("Sandbox")}, role
