"""``POST /networks/{id}/connect`` on a stopped container that is already on the network."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.engine_daemon import EngineDaemon

pytestmark = [pytest.mark.root]


def test_connect_stopped_container_to_its_network_updates_aliases(daemon: EngineDaemon) -> None:
    """docker-compose 1.x creates a service's container on the project network and then
    connects it to that same network with the service's aliases before starting it: dockerd
    accepts that for a container that is not running (only the endpoint settings change)."""
    tag = f"{os.getpid()}-{os.urandom(2).hex()}"
    net, name = f"cn-net-{tag}", f"cn-c-{tag}"
    status, _, out = daemon.request("POST", "/v1.41/networks/create", {"Name": net})
    assert status == 201, out
    try:
        status, _, out = daemon.request("POST", f"/v1.41/containers/create?name={name}", {
            "Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": net}})
        assert status == 201, out
        cid = json.loads(out)["Id"]
        status, _, out = daemon.request("POST", f"/v1.41/networks/{net}/connect", {
            "Container": cid, "EndpointConfig": {"Aliases": ["svc-alias"]}})
        assert status == 200, out
        status, _, out = daemon.request("POST", f"/v1.41/containers/{cid}/start")
        assert status == 204, out
        status, _, out = daemon.request("GET", f"/v1.41/containers/{cid}/json")
        assert status == 200, out
        assert "svc-alias" in json.loads(out)["NetworkSettings"]["Networks"][net]["Aliases"]
        # a running container is on the network for real: connecting it again is refused
        status, _, out = daemon.request("POST", f"/v1.41/networks/{net}/connect", {"Container": cid})
        assert status == 403, out
    finally:
        daemon.request("DELETE", f"/v1.41/containers/{name}?force=1")
        daemon.request("DELETE", f"/v1.41/networks/{net}")
