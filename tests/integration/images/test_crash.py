"""A process killed with SIGKILL in the middle of unpacking a layer (a pull, an import) leaves
the store consistent: no partial layer, no half-written image."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dockyard.images import ImageStore
from tests.unit.images.tars import D, F, digest, entry, make_tar

pytestmark = pytest.mark.root

CHILD = textwrap.dedent(
    """
    import sys, time
    from dockyard.images import ImageStore

    class Slow:
        def __init__(self, f):
            self.f = f
        def read(self, n=-1):
            time.sleep(0.002)
            return self.f.read(min(n, 4096) if n and n > 0 else 4096)

    store = ImageStore(sys.argv[1], driver="copy")
    with open(sys.argv[2], "rb") as f:
        if sys.argv[3] == "apply":
            store.apply_layer(None, Slow(f))
        else:
            store.import_tar(Slow(f), ref="imported:1")
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("operation", ["apply", "import"])
def test_sigkill_mid_unpack_leaves_no_partial_layer_or_image(tmp_path: os.PathLike[str], operation: str) -> None:
    root = os.path.join(str(tmp_path), "store")
    ImageStore(root, driver="copy")
    data = make_tar(entry("d/", D), *(entry(f"d/f{i:04d}", F, os.urandom(2048)) for i in range(1500)))
    layer_file = os.path.join(str(tmp_path), "layer.tar")
    with open(layer_file, "wb") as f:
        f.write(data)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", CHILD, root, layer_file, operation], env=env, stdout=subprocess.PIPE)
    try:
        tmp = os.path.join(root, "tmp")
        deadline = time.monotonic() + 60
        started = False
        while time.monotonic() < deadline and not started:
            for name in os.listdir(tmp):
                diff = os.path.join(tmp, name, "diff", "d")
                if name.startswith(f"layer-{child.pid}.") and os.path.isdir(diff) and len(os.listdir(diff)) > 50:
                    started = True
            time.sleep(0.01)
        assert started, "the child never got going"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert any(n.startswith("layer-") for n in os.listdir(os.path.join(root, "tmp")))  # debris...
    store = ImageStore(root, driver="copy")
    assert [n for n in os.listdir(store.tmp_dir) if not n.startswith("probe-")] == []  # ...cleaned
    assert store.layers.list() == []
    assert not store.has_layer(digest(data))
    assert store.check(deep=True) == []
    assert store.list() == []
    # and the same layer applies cleanly afterwards
    assert store.apply_layer(None, io.BytesIO(data)) == (digest(data), digest(data))
