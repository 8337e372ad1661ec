"""Real busybox containers, checked from the inside (root)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest

from dockyard.linux import capabilities, seccomp
from tests.integration.runtime.conftest import CLI, Bundle
from tests.support.shared import shared_path

pytestmark = pytest.mark.root


def test_pid_1_is_the_command(bundle: Bundle) -> None:
    res = bundle.run(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["1", "sh -c echo $$; cat /proc/1/cmdline | tr '\\0' ' ' "]


def test_hostname_is_set(bundle: Bundle) -> None:
    bundle.spec["hostname"] = "box-under-test"
    res = bundle.run(["hostname"])
    assert res.stdout.strip() == "box-under-test", res.stderr


def test_docker_default_capabilities(bundle: Bundle) -> None:
    res = bundle.run(["grep", "-E", "^Cap(Eff|Prm|Bnd)", "/proc/self/status"])
    lines = res.stdout.split()
    assert lines == ["CapPrm:", "00000000a80425fb", "CapEff:", "00000000a80425fb",
                     "CapBnd:", "00000000a80425fb"], res.stderr


def test_capabilities_missing_on_host_are_dropped_with_a_warning(bundle: Bundle) -> None:
    every = list(capabilities.CAPABILITIES)
    bundle.spec["process"]["capabilities"] = {s: every for s in ("bounding", "effective",
                                                                  "permitted")}
    res = bundle.run(["grep", "^CapEff", "/proc/self/status"])
    assert res.returncode == 0, res.stderr
    host = capabilities.to_mask(capabilities.host_bounding_set())
    assert int(res.stdout.split()[1], 16) == host
    if "CAP_SYS_RESOURCE" not in capabilities.host_bounding_set():
        assert "CAP_SYS_RESOURCE" in res.stderr


def test_seccomp_blocks_unshare_and_mount_even_with_cap_sys_admin(bundle: Bundle) -> None:
    caps = sorted({*capabilities.DEFAULT_CAPS, "CAP_SYS_ADMIN"})
    bundle.spec["process"]["capabilities"] = {s: caps for s in ("bounding", "effective",
                                                                 "permitted")}
    script = ("mkdir -p /mnt/t; mount -t tmpfs t /mnt/t && echo mount-ok; "
              "unshare -n true && echo unshare-ok; echo end")
    # control: without the filter, CAP_SYS_ADMIN allows both
    control = bundle.run(["sh", "-c", script])
    assert "mount-ok" in control.stdout and "unshare-ok" in control.stdout, control.stderr
    bundle.spec["linux"]["seccomp"] = seccomp.default_profile(capabilities.DEFAULT_CAPS)
    res = bundle.run(["sh", "-c", script])
    assert res.stdout.strip() == "end", res.stdout + res.stderr
    assert "Operation not permitted" in res.stderr


def test_masked_paths_read_empty(bundle: Bundle) -> None:
    res = bundle.run(["sh", "-c", "cat /proc/kcore | wc -c; cat /proc/keys | wc -c; "
                                  "ls /proc/acpi | wc -l; ls /sys/firmware | wc -l"])
    assert res.stdout.split() == ["0", "0", "0", "0"], res.stderr


def test_proc_sys_and_sys_are_read_only(bundle: Bundle) -> None:
    res = bundle.run(["sh", "-c", "echo 1 > /proc/sys/vm/overcommit_memory; "
                                  "touch /sys/kernel/x; mkdir /sys/fs/cgroup/x; echo end"])
    assert res.stdout.strip() == "end"
    assert res.stderr.count("Read-only file system") == 3, res.stderr


def test_read_only_rootfs(bundle: Bundle) -> None:
    bundle.spec["root"]["readonly"] = True
    res = bundle.run(["sh", "-c", "touch /x || echo refused; touch /dev/shm/ok && echo shm-ok"])
    assert res.stdout.split() == ["refused", "shm-ok"], res.stderr
    assert "Read-only file system" in res.stderr


def test_exit_code_passes_through(bundle: Bundle) -> None:
    assert bundle.run(["sh", "-c", "exit 7"]).returncode == 7


def test_missing_command_fails_at_create_and_leaves_nothing(bundle: Bundle) -> None:
    res = bundle.run(["no-such-command"])
    assert res.returncode == 1
    assert 'exec: "no-such-command": executable file not found in $PATH' in res.stderr
    assert not os.path.exists(os.path.join(bundle.root, bundle.id))
    assert not [d for d in bundle.cgroup_dirs() if os.path.exists(d)]


def test_signals_reach_the_init(bundle: Bundle) -> None:
    bundle.spec["process"]["args"] = ["sh", "-c", "trap 'exit 42' TERM; echo ready; "
                                      "while true; do sleep 0.1; done"]
    bundle.write()
    proc = subprocess.Popen([*CLI, "--root", bundle.root, "run", "--bundle", bundle.path,
                             bundle.id], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    subprocess.run([*CLI, "--root", bundle.root, "kill", bundle.id, "TERM"], check=True)
    assert proc.wait(timeout=30) == 42


def test_sigkill_gives_137(bundle: Bundle) -> None:
    bundle.spec["process"]["args"] = ["sh", "-c", "echo ready; sleep 60"]
    bundle.write()
    proc = subprocess.Popen([*CLI, "--root", bundle.root, "run", "--bundle", bundle.path,
                             bundle.id], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    subprocess.run([*CLI, "--root", bundle.root, "kill", bundle.id, "9"], check=True)
    assert proc.wait(timeout=30) == 128 + signal.SIGKILL


def test_user_namespace_maps_ids(bundle: Bundle) -> None:
    # the mapped root is host uid 200000: it must be able to reach the rootfs
    bundle.make_world_reachable()
    bundle.spec["linux"]["namespaces"].append({"type": "user"})
    bundle.spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    res = bundle.run(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; ls /dev/null"])
    assert res.returncode == 0, res.stderr
    lines = [line.split() for line in res.stdout.splitlines()]
    assert lines == [["0"], ["0"], ["0", "200000", "65536"], ["/dev/null"]]


def test_rlimits_and_umask_and_cwd_and_user(bundle: Bundle) -> None:
    proc: dict[str, Any] = bundle.spec["process"]
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    proc["user"] = {"uid": 1, "gid": 1, "additionalGids": [65534], "umask": 0o077}
    proc["cwd"] = "/tmp"
    proc["env"] = ["PATH=/bin", "GREETING=hi"]
    res = bundle.run(["sh", "-c", "ulimit -n; ulimit -Hn; umask; pwd; id -u; id -G; "
                                  "echo $GREETING"])
    assert res.stdout.split() == ["123", "456", "0077", "/tmp", "1", "1", "65534", "hi"], \
        res.stderr


def test_rlimit_above_inherited_hard_limit_is_capped(bundle: Bundle) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    bundle.spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard * 4,
                                          "hard": hard * 4}]
    res = bundle.run(["sh", "-c", "ulimit -Hn"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(hard)


def test_bind_mounts_and_joining_a_network_namespace(bundle: Bundle, tmp_path: Any) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from host\n")
    netns = f"dy-{bundle.id}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        bundle.spec["mounts"].append({"destination": "/data", "type": "bind",
                                      "source": str(shared), "options": ["rbind", "ro"]})
        ns = bundle.spec["linux"]["namespaces"]
        ns[:] = [n for n in ns if n["type"] != "network"]
        ns.append({"type": "network", "path": f"/run/netns/{netns}"})
        res = bundle.run(["sh", "-c", "cat /data/hello; touch /data/x || echo ro; "
                                      "readlink /proc/self/ns/net"])
        inode = os.stat(f"/run/netns/{netns}").st_ino
        assert res.stdout.splitlines() == ["from host", "ro", f"net:[{inode}]"], res.stderr
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)


def test_hooks_run_with_the_container_state(bundle: Bundle, tmp_path: Any) -> None:
    out = tmp_path / "hooks.log"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {out}; echo >> {out}"]}
    bundle.spec["hooks"] = {"prestart": [hook], "poststart": [hook], "poststop": [hook]}
    res = bundle.run(["true"])
    assert res.returncode == 0, res.stderr
    import json

    states = [json.loads(line) for line in out.read_text().splitlines() if line]
    assert [s["status"] for s in states] == ["creating", "running", "stopped"]
    assert all(s["id"] == bundle.id for s in states) and states[0]["pid"] > 0


def test_failing_prestart_hook_leaves_nothing_behind(bundle: Bundle) -> None:
    bundle.spec["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    res = bundle.run(["true"])
    assert res.returncode == 1 and "prestart hook /bin/false failed" in res.stderr
    assert not os.path.exists(os.path.join(bundle.root, bundle.id))
    time.sleep(0)  # the fixture checks the cgroups


def test_dockers_own_generated_config_runs(bundle: Bundle, tmp_path: Any) -> None:
    """dockerd 20.10's config.json (FIELD-NOTES reference), with only its host paths replaced:
    seccomp without noNewPrivileges, sysctls, rbind files, Docker's masked/readonly paths."""
    import json

    ref = shared_path("reference/dockerd-generated-oci-config.json")
    if not os.path.exists(ref):
        pytest.skip("reference config not available")
    with open(ref) as f:
        spec = json.load(f)
    spec["root"] = {"path": "rootfs"}
    spec.pop("hooks", None)  # libnetwork's prestart hook re-executes dockerd
    spec["linux"]["cgroupsPath"] = f"/dockyard/{bundle.id}"
    for m in spec["mounts"]:
        if m.get("type") == "bind":
            host = tmp_path / os.path.basename(m["destination"])
            host.write_text(f"{m['destination']} from host\n")
            m["source"] = str(host)
    assert not spec["process"].get("noNewPrivileges")
    bundle.spec = spec
    res = bundle.run(["sh", "-c", "grep CapEff /proc/self/status; cat /etc/hostname; "
                                  "cat /proc/sys/net/ipv4/ping_group_range; "
                                  "mkdir -p /mnt/x; mount -t tmpfs t /mnt/x || echo no-mount"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["CapEff:", "00000000a80425fb"]
    assert lines[1] == "/etc/hostname from host"
    assert lines[2].split() == ["0", "2147483647"]
    assert lines[3] == "no-mount"


def test_sysctl_is_set_in_the_containers_network_namespace(bundle: Bundle) -> None:
    # a value nobody else on this host uses, so concurrent tests cannot make this flaky
    bundle.spec["linux"]["sysctl"] = {"net.core.somaxconn": "1234"}
    res = bundle.run(["cat", "/proc/sys/net/core/somaxconn"])
    assert res.stdout.strip() == "1234", res.stderr
    with open("/proc/sys/net/core/somaxconn") as f:
        assert f.read().strip() != "1234"


def test_container_side_hooks(bundle: Bundle, tmp_path: Any) -> None:
    """createContainer runs before pivot_root (host paths resolve), startContainer after it,
    inside the container (its own /bin/sh), before the user process."""
    import json

    out = tmp_path / "create.json"
    bundle.spec["hooks"] = {
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}"]}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/started"]}],
    }
    res = bundle.run(["sh", "-c", "cat /tmp/started"])
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "running"
    assert json.loads(out.read_text())["status"] == "creating"


def test_oom_score_adj_is_applied(bundle: Bundle) -> None:
    bundle.spec["process"]["oomScoreAdj"] = 500
    res = bundle.run(["cat", "/proc/self/oom_score_adj"])
    assert res.stdout.strip() == "500", res.stderr


def test_rootfs_on_an_overlay_mount_made_by_the_caller(bundle: Bundle, tmp_path: Any) -> None:
    lower = os.path.join(bundle.path, "rootfs")
    upper, work, merged = (tmp_path / "upper", tmp_path / "work", tmp_path / "merged")
    for d in (upper, work, merged):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        bundle.spec["root"]["path"] = str(merged)
        res = bundle.run(["sh", "-c", "echo written > /new-file; cat /new-file"])
        assert res.stdout.strip() == "written", res.stderr
        assert (upper / "new-file").read_text() == "written\n"  # landed in the upper dir
        assert not os.path.exists(os.path.join(lower, "new-file"))
    finally:
        subprocess.run(["umount", str(merged)], check=True)
