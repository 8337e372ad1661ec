"""apply_layer: what a layer tar becomes on disk, what is refused, and the exact tar back."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images import ImageStore
from tests.unit.images.tars import CHR, LNK, SYM, D, F, digest, entry, make_tar


@pytest.fixture
def store(tmp_path: os.PathLike[str]) -> ImageStore:
    return ImageStore(os.path.join(str(tmp_path), "store"), driver="copy")


@pytest.fixture
def outside(tmp_path: os.PathLike[str]) -> str:
    d = os.path.join(str(tmp_path), "outside")
    os.mkdir(d)
    return d


def apply(store: ImageStore, data: bytes, parent: str | None = None) -> str:
    chain, diff_id = store.apply_layer(parent, io.BytesIO(data))
    assert diff_id == digest(data)
    return chain


def diff_dir(store: ImageStore, chain: str) -> str:
    return store.layer(chain).path


def assert_nothing_left(store: ImageStore, outside: str) -> None:
    assert store.layers.list() == []
    assert [n for n in os.listdir(store.tmp_dir) if not n.startswith("probe-")] == []
    assert os.listdir(outside) == []


def test_files_dirs_symlinks_and_metadata(store: ImageStore) -> None:
    data = make_tar(
        entry("etc/", D, mode=0o750, mtime=1_500_000_000),
        entry("etc/conf", F, b"x = 1\n", mode=0o640, mtime=1_400_000_000),
        entry("bin/", D),
        entry("bin/tool", F, b"#!/bin/sh\n", mode=0o755),
        entry("bin/alias", SYM, link="tool"),
        entry("bin/abs", SYM, link="/etc/conf"),
    )
    d = diff_dir(store, apply(store, data))
    with open(os.path.join(d, "etc/conf"), "rb") as f:
        assert f.read() == b"x = 1\n"
    st = os.stat(os.path.join(d, "etc/conf"))
    assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o640, 1_400_000_000)
    st = os.stat(os.path.join(d, "etc"))
    assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o750, 1_500_000_000)
    assert os.readlink(os.path.join(d, "bin/alias")) == "tool"
    assert os.readlink(os.path.join(d, "bin/abs")) == "/etc/conf"


def test_hardlinks_within_a_layer_share_an_inode(store: ImageStore) -> None:
    data = make_tar(entry("a", F, b"data"), entry("b", LNK, link="a"))
    d = diff_dir(store, apply(store, data))
    assert os.stat(os.path.join(d, "a")).st_ino == os.stat(os.path.join(d, "b")).st_ino


def test_hardlink_header_metadata_applies_to_the_shared_inode(store: ImageStore) -> None:
    # what dockerd does (seen against dockerd 20.10 in tests/interop/images)
    data = make_tar(entry("a", F, b"data", mode=0o755, mtime=1), entry("b", LNK, link="a", mode=0o600, mtime=2))
    d = diff_dir(store, apply(store, data))
    st = os.stat(os.path.join(d, "a"))
    assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o600, 2)


def test_hardlink_to_a_lower_layer_gets_a_copy(store: ImageStore) -> None:
    lower = apply(store, make_tar(entry("bin/", D), entry("bin/busybox", F, b"ELF", mode=0o755)))
    upper = apply(store, make_tar(entry("bin/", D), entry("bin/ls", LNK, link="bin/busybox", mode=0o755)), lower)
    ls = os.path.join(diff_dir(store, upper), "bin/ls")
    orig = os.path.join(diff_dir(store, lower), "bin/busybox")
    with open(ls, "rb") as f:
        assert f.read() == b"ELF"
    assert os.stat(ls).st_ino != os.stat(orig).st_ino
    assert os.stat(ls).st_mode & 0o777 == 0o755


def test_later_duplicate_entry_wins(store: ImageStore) -> None:
    data = make_tar(entry("f", F, b"first"), entry("f", F, b"second!"))
    d = diff_dir(store, apply(store, data))
    with open(os.path.join(d, "f"), "rb") as f:
        assert f.read() == b"second!"


@pytest.mark.parametrize(
    "bad",
    [
        [entry("../evil", F, b"x")],
        [entry("a/../../evil", F, b"x")],
        [entry("/abs", F, b"x")],
        [entry("up", SYM, link="../../../../../../tmp")],
        [entry("d/", D), entry("d/up", SYM, link="../../x")],
        [entry("h", LNK, link="../../etc/passwd")],
        [entry("h", LNK, link="/etc/passwd")],  # means <layer>/etc/passwd, which is absent
        [entry("dev", CHR, major=1, minor=3)],
        [entry("x", b"Z", b"")],
    ],
    ids=["dotdot", "inner-dotdot", "absolute", "symlink-escape", "nested-symlink-escape",
         "hardlink-escape", "hardlink-absolute", "device", "unknown-type"],
)
def test_hostile_entries_are_refused(store: ImageStore, outside: str, bad: list) -> None:  # type: ignore[type-arg]
    data = make_tar(entry("ok", F, b"fine"), *bad)
    with pytest.raises(InvalidArgument):
        store.apply_layer(None, io.BytesIO(data))
    assert_nothing_left(store, outside)


def test_writing_through_a_symlink_is_refused(store: ImageStore, outside: str) -> None:
    data = make_tar(entry("link", SYM, link=outside), entry("link/pwned", F, b"gotcha"))
    with pytest.raises(InvalidArgument, match="symlink"):
        store.apply_layer(None, io.BytesIO(data))
    assert_nothing_left(store, outside)


def test_writing_through_a_symlinked_directory_from_a_lower_entry_is_refused(
    store: ImageStore, outside: str
) -> None:
    data = make_tar(entry("d", SYM, link="/"), entry("d/etc/", D), entry("d/etc/x", F, b"x"))
    with pytest.raises(InvalidArgument):
        store.apply_layer(None, io.BytesIO(data))
    assert_nothing_left(store, outside)


def test_hardlink_to_a_symlink_never_changes_the_symlink_target(store: ImageStore, outside: str) -> None:
    victim = os.path.join(outside, "victim")
    with open(victim, "w") as f:
        f.write("precious")
    os.chmod(victim, 0o600)
    data = make_tar(entry("s", SYM, link=victim), entry("h", LNK, link="s", mode=0o777, mtime=5))
    store.apply_layer(None, io.BytesIO(data))
    st = os.stat(victim)
    assert stat.S_IMODE(st.st_mode) == 0o600 and int(st.st_mtime) != 5
    os.unlink(victim)


def test_absurd_size_is_refused_before_reading(store: ImageStore, outside: str) -> None:
    info = tarfile.TarInfo("huge")
    info.size = 1 << 50
    data = info.tobuf(tarfile.PAX_FORMAT) + b"\0" * 4096
    with pytest.raises(InvalidArgument, match="free space"):
        store.apply_layer(None, io.BytesIO(data))
    assert_nothing_left(store, outside)


@pytest.mark.parametrize(("field", "value"), [("uid", 1 << 50), ("mtime", 1 << 70)])
def test_absurd_numbers_are_refused(store: ImageStore, outside: str, field: str, value: int) -> None:
    info = tarfile.TarInfo("f")
    setattr(info, field, value)  # written in GNU base-256 form
    data = info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024
    with pytest.raises(InvalidArgument):
        store.apply_layer(None, io.BytesIO(data))
    assert_nothing_left(store, outside)


def test_endless_padding_after_the_end_is_refused(store: ImageStore, outside: str) -> None:
    class Zeros:
        def __init__(self, head: bytes) -> None:
            self.head = head

        def read(self, n: int = -1) -> bytes:
            out, self.head = self.head, b""
            return out or bytes(1 << 20)  # never ends

    with pytest.raises(InvalidArgument, match="after the end"):
        store.apply_layer(None, Zeros(make_tar(entry("f", F, b"x"))))  # type: ignore[arg-type]
    assert_nothing_left(store, outside)


def test_a_failed_very_deep_layer_is_cleaned_up(store: ImageStore, outside: str) -> None:
    deep = "/".join(["d"] * 1900) + "/f"  # deeper than Python's recursion limit
    data = make_tar(entry(deep, F, b"x"))
    with pytest.raises(InvalidArgument, match="diff id mismatch"):
        store.apply_layer(None, io.BytesIO(data), digest(b"other"))
    assert_nothing_left(store, outside)


def test_truncated_tar_is_refused(store: ImageStore, outside: str) -> None:
    data = make_tar(entry("f", F, os.urandom(50_000)))
    with pytest.raises(InvalidArgument):
        store.apply_layer(None, io.BytesIO(data[:20_000]))
    assert_nothing_left(store, outside)


def test_devices_allowed_when_asked(store: ImageStore) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    data = make_tar(entry("null", CHR, mode=0o666, major=1, minor=3))
    chain, _ = store.apply_layer(None, io.BytesIO(data), allow_devices=True)
    st = os.lstat(os.path.join(diff_dir(store, chain), "null"))
    assert os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def test_diff_id_mismatch_leaves_nothing(store: ImageStore, outside: str) -> None:
    data = make_tar(entry("f", F, b"x"))
    with pytest.raises(InvalidArgument, match="diff id mismatch"):
        store.apply_layer(None, io.BytesIO(data), digest(b"something else"))
    assert_nothing_left(store, outside)


def test_known_layer_is_not_read_again(store: ImageStore) -> None:
    data = make_tar(entry("f", F, b"x"))
    chain = apply(store, data)
    stream = io.BytesIO(data)
    assert store.apply_layer(None, stream, digest(data)) == (chain, digest(data))
    assert stream.tell() == 0


def test_chain_ids_follow_the_oci_formula(store: ImageStore) -> None:
    a = make_tar(entry("a", F, b"a"))
    b = make_tar(entry("b", F, b"b"))
    ca = apply(store, a)
    cb = apply(store, b, ca)
    assert ca == digest(a)
    assert cb == digest(f"{digest(a)} {digest(b)}".encode())
    assert store.chain_id([digest(a), digest(b)]) == cb


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_layer_tar_is_rebuilt_byte_for_byte(store: ImageStore, fmt: int) -> None:
    long = "d/" + "n" * 150 if fmt != tarfile.USTAR_FORMAT else "d/short"
    data = make_tar(
        entry("d/", D),
        entry(long, F, os.urandom(70_000)),
        entry("d/empty", F, b""),
        entry("d/link", LNK, link=long),
        entry("d/sym", SYM, link="empty"),
        entry("d/dup", F, b"old contents"),
        entry("d/dup", F, b"new"),
        fmt=fmt,
    )
    data += b"\0" * 1536  # some writers pad more: still part of the diff id
    chain, diff_id = store.apply_layer(None, io.BytesIO(data))
    assert diff_id == digest(data)
    assert b"".join(store.layer_tar(chain)) == data


def test_a_big_file_streams_through_without_being_held_in_memory(store: ImageStore) -> None:
    import tracemalloc

    data = make_tar(entry("big", F, b"\xab" * (48 << 20)))
    tracemalloc.start()
    try:
        store.apply_layer(None, io.BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_names_that_are_not_utf8_round_trip(store: ImageStore) -> None:
    name = b"caf\xe9-latin1".decode("utf-8", "surrogateescape")
    data = make_tar(entry(name, F, b"x"), entry("d/", D), entry(f"d/{name}", F, b"y"))
    chain, _ = store.apply_layer(None, io.BytesIO(data))
    assert os.path.exists(os.path.join(os.fsencode(diff_dir(store, chain)), b"caf\xe9-latin1"))
    assert b"".join(store.layer_tar(chain)) == data


def test_layer_tar_rebuilt_after_a_directory_replaced_a_file(store: ImageStore) -> None:
    data = make_tar(entry("x/", D), entry("x/f", F, b"inside"), entry("x", F, b"now a file"))
    chain, _ = store.apply_layer(None, io.BytesIO(data))
    assert b"".join(store.layer_tar(chain)) == data


def test_xattrs_are_kept_and_trusted_ones_dropped(store: ImageStore, tmp_path: os.PathLike[str]) -> None:
    # ask the filesystem first: an OSError from our unpacking must fail the test, not skip it
    probe = os.path.join(str(tmp_path), "xattr-probe")
    with open(probe, "w"):
        pass
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError as exc:  # pragma: no cover - filesystems without user xattrs
        pytest.skip(f"no user xattrs here: {exc}")
    data = make_tar(
        entry("f", F, b"x", pax={"SCHILY.xattr.user.color": "blue",
                                 "SCHILY.xattr.trusted.overlay.opaque": "y"}),
    )
    chain = apply(store, data)
    f = os.path.join(diff_dir(store, chain), "f")
    assert os.getxattr(f, "user.color") == b"blue"
    if os.geteuid() == 0:
        assert "trusted.overlay.opaque" not in os.listxattr(f)


def test_the_same_layer_applied_by_several_threads_at_once(store: ImageStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = make_tar(entry("d/", D), *(entry(f"d/f{i}", F, os.urandom(500)) for i in range(60)))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: store.apply_layer(None, io.BytesIO(data)), range(6)))
    assert set(results) == {(digest(data), digest(data))}
    assert store.layers.list() == [digest(data)]
    assert b"".join(store.layer_tar(digest(data))) == data
    assert [n for n in os.listdir(store.tmp_dir) if not n.startswith("probe-")] == []
