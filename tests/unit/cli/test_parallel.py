"""rm/stop/kill/pause/unpause act on their containers at once, like the docker CLI's
parallelOperation, and still report in the order given."""

from __future__ import annotations

import threading

from tests.unit.cli.test_commands import cli
from tests.unit.client.fakedaemon import FakeDaemon


def test_rm_removes_at_once_and_reports_in_order(fake_daemon: FakeDaemon) -> None:
    c_arrived = threading.Event()

    def slow_a(_: object) -> tuple[int, None]:
        # answered only once c's request is in: a sequential rm would never get there
        assert c_arrived.wait(10), "rm did not send its requests concurrently"
        return 204, None

    def c(_: object) -> tuple[int, None]:
        c_arrived.set()
        return 204, None

    fake_daemon.route("DELETE", "/containers/a")(slow_a)
    fake_daemon.route("DELETE", "/containers/b")(
        lambda r: (404, {"message": "No such container: b"}))
    fake_daemon.route("DELETE", "/containers/c")(c)
    code, out, err = cli(fake_daemon, "rm", "-f", "a", "b", "c")
    assert (code, out) == (1, "a\nc\n")
    assert err == "Error response from daemon: No such container: b\n"
    deletes = [r for r in fake_daemon.paths() if r.startswith("DELETE")]
    assert sorted(deletes) == ["DELETE /containers/a", "DELETE /containers/b",
                               "DELETE /containers/c"]


def test_one_container_stays_on_the_main_connection(fake_daemon: FakeDaemon) -> None:
    fake_daemon.route("POST", "/containers/a/kill")(lambda r: (204, None))
    code, out, _ = cli(fake_daemon, "kill", "a")
    assert (code, out) == (0, "a\n")
