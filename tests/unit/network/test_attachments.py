"""The networks a container is on by its settings (what inspect shows while it is not attached).

The network service runs on a data root holding two network records and nothing in the kernel:
create's ``NetworkingConfig`` and ``network connect`` on a stopped container only write the
container's record, which a new service instance (a daemon restart) reads back.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dockyard.daemon.events import EventBus
from dockyard.daemon.networks import Attachment, ContainerNetView, NetworkService
from dockyard.errors import InvalidArgument, NotFound
from dockyard.network import Network

APP = Network(id="a" * 64, name="app", driver="bridge", bridge="dy-a", subnet="10.1.0.0/24",
              gateway="10.1.0.1")
OTHER = Network(id="b" * 64, name="other", driver="bridge", bridge="dy-b", subnet="10.2.0.0/24",
                gateway="10.2.0.1")
CID = "c" * 64


def service(root: Path) -> NetworkService:
    nets = root / "data" / "network" / "networks"
    nets.mkdir(parents=True, exist_ok=True)
    for net in (APP, OTHER):
        (nets / f"{net.id}.json").write_text(json.dumps(net.to_dict()))
    containers = SimpleNamespace(containers={})
    return NetworkService(str(root / "data"), str(root / "exec"), {}, containers, EventBus())


def stopped(mode: str) -> Any:
    return SimpleNamespace(id=CID, name="web", host_config={"NetworkMode": mode},
                           state=SimpleNamespace(running=False, status="created"))


def test_create_keeps_aliases_and_ip_per_network(tmp_path: Path) -> None:
    svc = service(tmp_path)
    asyncio.run(svc.on_create(CID, {"NetworkMode": "app"}, {"EndpointsConfig": {
        "app": {"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.9"}}}}))
    assert svc.attachments(CID, "app") == [Attachment("app", APP, ("web",), "10.1.0.9")]
    # the record is read back by the next daemon
    assert service(tmp_path).attachments(CID, "app") == svc.attachments(CID, "app")


def test_connect_on_a_stopped_container_adds_a_network_after_its_own(tmp_path: Path) -> None:
    svc = service(tmp_path)
    asyncio.run(svc.on_create(CID, {"NetworkMode": "app"}, None))
    asyncio.run(svc.connect(stopped("app"), "other", aliases=["zz"]))
    assert svc.attachments(CID, "app") == [
        Attachment("app", APP), Attachment("other", OTHER, ("zz",), connected=True)]
    assert service(tmp_path).attachments(CID, "app")[1].connected


def test_modes_name_their_network_and_a_shared_namespace_has_none(tmp_path: Path) -> None:
    svc = service(tmp_path)
    for mode in ("default", "bridge", "none", "host"):
        name = "bridge" if mode == "default" else mode
        # no default bridge / none / host records here: the name alone, as configured
        assert svc.attachments(CID, mode) == [Attachment(name, None)]
    assert svc.attachments(CID, "container:other") == []
    with pytest.raises(InvalidArgument):
        svc.attachments(CID, "container:")


def test_forget_drops_the_record_and_its_cached_copy(tmp_path: Path) -> None:
    svc = service(tmp_path)
    asyncio.run(svc.on_create(CID, {"NetworkMode": "app"}, {"EndpointsConfig": {
        "app": {"Aliases": ["web"]}}}))
    assert svc.attachments(CID, "app")[0].aliases == ("web",)
    svc.forget(CID)
    assert not os.path.exists(tmp_path / "data" / "network" / "containers" / f"{CID}.json")
    assert svc.attachments(CID, "app") == [Attachment("app", APP)]


def test_adopt_hangs_the_view_that_inspect_reads(tmp_path: Path) -> None:
    svc = service(tmp_path)
    c = stopped("app")
    svc.adopt(c)
    assert isinstance(c.network, ContainerNetView)
    assert c.network.attachments("app") == [Attachment("app", APP)]
    assert c.network.endpoints() == [] and c.network.sandbox_key() == ""


def test_disconnect_then_connect_of_a_created_container_as_compose_does(tmp_path: Path) -> None:
    """docker-compose 1.x: create on the project network, disconnect (the network is listed but
    without the short-id alias), connect with the service's aliases."""
    svc = service(tmp_path)
    c = stopped("app")
    asyncio.run(svc.on_create(CID, {"NetworkMode": "app"}, {"EndpointsConfig": {
        "app": {"Aliases": ["old"]}}}))
    asyncio.run(svc.disconnect(c, "app"))
    assert svc.attachments(CID, "app") == []
    asyncio.run(svc.connect(c, "app", aliases=["svc"]))
    assert svc.attachments(CID, "app") == [Attachment("app", APP, ("svc",), connected=True)]


def test_disconnect_of_a_stopped_container_from_a_connected_network(tmp_path: Path) -> None:
    svc = service(tmp_path)
    c = stopped("app")
    asyncio.run(svc.on_create(CID, {"NetworkMode": "app"}, None))
    asyncio.run(svc.connect(c, "other", aliases=["zz"], ip="10.2.0.5"))
    asyncio.run(svc.disconnect(c, "other"))
    assert svc.attachments(CID, "app") == [Attachment("app", APP)]
    with pytest.raises(NotFound, match="is not connected to network other"):
        asyncio.run(svc.disconnect(c, "other"))
    asyncio.run(svc.disconnect(c, "other", force=True))
    asyncio.run(svc.connect(c, "other"))         # the old aliases and --ip went with it
    assert svc.attachments(CID, "app")[1] == Attachment("other", OTHER, connected=True)
