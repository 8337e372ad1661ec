"""Docker Hub-shaped search, the v1 ping, config loading and the storage driver's guard."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.registry.config import load_config, parse_duration
from dockyard.registry.storage import FilesystemDriver
from tests.unit.registry.harness import RunningRegistry, base_config, make_image


def test_search_answers_in_docker_hub_shape(registry: RunningRegistry) -> None:
    for repo in ("library/busybox", "tools/busybox-extra", "library/alpine"):
        registry.push_blob(repo, b"x")
    r = registry.request("GET", "/v1/search?q=busybox&n=25")
    assert r.status == 200
    body = r.json()
    assert body["query"] == "busybox" and body["num_results"] == 2
    assert body["results"][0] == {"name": "library/busybox", "description": "", "star_count": 0,
                                  "is_official": False, "is_automated": False,
                                  "is_trusted": False}
    page2 = registry.request("GET", "/v1/search?q=busybox&n=1&page=2").json()
    assert [x["name"] for x in page2["results"]] == ["tools/busybox-extra"]
    assert page2["num_pages"] == 2
    assert registry.request("GET", "/v1/search?q=b&n=x").code == "PAGINATION_NUMBER_INVALID"


def test_v1_ping_says_standalone(registry: RunningRegistry) -> None:
    r = registry.request("GET", "/v1/_ping")
    assert r.status == 200 and r.headers["X-Docker-Registry-Standalone"] == "true"


def test_unknown_endpoint_is_404(registry: RunningRegistry) -> None:
    assert registry.request("GET", "/v2/r/nonsense").status == 404
    assert registry.request("GET", "/token").status == 404  # no token auth configured


def test_config_file_keys(tmp_path: pytest.TempPathFactory) -> None:
    path = f"{tmp_path}/registry.yml"
    with open(path, "w") as f:
        f.write("""
version: 0.1
http: {addr: 127.0.0.1:5001, workers: 2, tls: {certificate: /c.pem, key: /k.pem}}
storage: {filesystem: {rootdirectory: /srv/reg}, delete: {enabled: false},
          maintenance: {readonly: {enabled: true}}}
auth: {htpasswd: {realm: R, path: /h}}
proxy: {remoteurl: https://example.invalid}
notifications: {endpoints: [{name: a, url: "http://127.0.0.1:1/hook", timeout: 2s}]}
gc: {grace: 30m}
log: {accesslog: {disabled: false}}
""")
    config = load_config(path)
    assert (config.root, config.listen, config.workers) == ("/srv/reg", "127.0.0.1:5001", 2)
    assert (config.tls_cert, config.delete_enabled, config.htpasswd) == ("/c.pem", False, "/h")
    assert config.proxy_url == "https://example.invalid" and config.gc_grace == 1800
    assert config.notifications[0].timeout == 2 and config.access_log and config.read_only
    assert load_config(path, root="/other", listen="0.0.0.0:1").root == "/other"
    with pytest.raises(InvalidArgument):
        load_config(None)
    assert parse_duration("1h") == 3600 and parse_duration(5) == 5


def test_filesystem_driver_refuses_paths_outside_root(tmp_path: pytest.TempPathFactory) -> None:
    driver = FilesystemDriver(f"{tmp_path}/root")
    with pytest.raises(InvalidArgument):
        driver.write("/../escape", b"x")
    driver.write("/a/b", b"1")
    driver.move("/a/b", "/c/d")
    assert driver.read("/c/d") == b"1" and driver.stat("/a/b") is None
    assert driver.list("/c") == ["d"]


def test_search_shows_the_image_description(registry: RunningRegistry) -> None:
    labelled = make_image(labels={"org.opencontainers.image.description": "tiny shell"})
    registry.push_image("tools/labelled", "latest", labelled)
    annotated = make_image(annotations={"org.opencontainers.image.description": "annotated"})
    registry.push_image("tools/annotated", "1.0", annotated)
    results = registry.request("GET", "/v1/search?q=tools").json()["results"]
    assert {r["name"]: r["description"] for r in results} == {
        "tools/annotated": "annotated", "tools/labelled": "tiny shell"}


def test_read_only_mode_serves_but_refuses_changes(tmp_path: pytest.TempPathFactory) -> None:
    root = f"{tmp_path}/root"
    writable = RunningRegistry(base_config(root))
    image = make_image()
    digest = writable.push_image("r", "v1", image)
    writable.stop()
    frozen = RunningRegistry(base_config(root, read_only=True))
    try:
        assert frozen.request("GET", "/v2/r/manifests/v1").body == image.manifest
        for method, path in [("POST", "/v2/r/blobs/uploads/"), ("PUT", "/v2/r/manifests/v2"),
                             ("DELETE", f"/v2/r/manifests/{digest}"),
                             ("DELETE", f"/v2/r/blobs/{next(iter(image.blobs))}")]:
            r = frozen.request(method, path, image.manifest if method == "PUT" else None,
                               {"Content-Type": image.media_type})
            assert (r.status, r.code) == (405, "UNSUPPORTED"), path
        assert frozen.request("GET", "/v2/r/tags/list").json()["tags"] == ["v1"]
    finally:
        frozen.stop()
