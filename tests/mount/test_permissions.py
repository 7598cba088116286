"""Outputs carry their source's permissions; the store is private; the
xattr commands and the jobs file obey the same rules.  Checked as a real
second user (nobody, through setpriv) on a mount with allow_other."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import rfsmount
from asuser import as_nobody
from rfsmount import read_bytes
from storeutil import OLINDA

NOBODY = 65534

# Every kind of virtual name of a source: computed or not, each format,
# the world file of a png.
SECRET_NAMES = ["secret.tif@focal=3", "secret.tif@fmt=gtiff",
                "secret.tif@fmt=png", "secret.tif@fmt=png.pgw",
                "secret.tif@slope", "secret.tif@proj=EPSG:4326",
                "secret.tif@fmt=cog"]


@pytest.fixture
def public(mount_factory):
    """A directory others may enter (pytest's tmp_path is 0700), holding
    the source, the mount point and the store; removed after the mounts
    are stopped."""
    base = Path(tempfile.mkdtemp(prefix="rfs-perm-", dir="/tmp"))
    os.chmod(base, 0o755)
    src = base / "src"
    rfsmount.copy_data(src)
    os.chmod(src, 0o755)
    shutil.copy(src / OLINDA, src / "secret.tif")
    os.chmod(src / "secret.tif", 0o600)
    shutil.copy(src / OLINDA, src / "public.tif")
    os.chmod(src / "public.tif", 0o644)
    try:
        yield base
    finally:
        mount_factory.stop_all()
        shutil.rmtree(base)


def start(mount_factory, base, workers=2, options=()):
    return mount_factory(src=base / "src", cache=base / "cache",
                         mnt=base / "mnt", workers=workers,
                         options=["allow_other"] + list(options))


def jobs(m):
    text = read_bytes(m.path(".rasterfs/jobs")).decode()
    return [json.loads(line) for line in text.splitlines()]


def test_outputs_carry_source_permissions(mount_factory, public):
    m = start(mount_factory, public)
    # root computes some of them (a png, so its world file exists) ...
    for n in ("secret.tif@focal=3", "secret.tif@fmt=png"):
        assert len(read_bytes(m.path(n))) > 0
    assert len(read_bytes(m.path("secret.tif@fmt=png.pgw"))) > 0
    public_bytes = read_bytes(m.path("public.tif@focal=3"))
    # ... and sees the source's owner and read bits on every name.
    for n in SECRET_NAMES:
        st = os.stat(m.path(n))
        assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o7777 == 0o400, n
        assert (st.st_uid, st.st_gid) == (0, 0), n
    assert os.stat(m.path("public.tif@focal=3")).st_mode & 0o7777 == 0o444
    started = m.stats()["jobs_started"]

    # nobody: EACCES on the source and on every virtual name of it, and
    # cannot start its job through the warm command either.
    ops = [("read", m.path("secret.tif"))]
    ops += [("read", m.path(n)) for n in SECRET_NAMES]
    ops += [("getxattr", m.path("secret.tif@slope"), "user.rasterfs.warm")]
    got = as_nobody(*ops)
    assert got == [["err", "EACCES"]] * len(ops), got
    assert m.stats()["jobs_started"] == started, "a refused name ran a job"

    # A readable source's outputs are readable.
    got = as_nobody(("read", m.path("public.tif@focal=3")),
                    ("stat", m.path("public.tif@focal=3")))
    assert got[0] == ["ok", len(public_bytes)], got
    assert got[1][1][1] == 0 and got[1][1][0] & 0o777 == 0o444

    # chmod of the source reaches its outputs (after the attribute
    # timeout, 1 s): the identity, hence the key, is unchanged.
    os.chmod(public / "src" / "public.tif", 0o600)
    time.sleep(1.5)
    got = as_nobody(("read", m.path("public.tif@focal=3")))
    assert got == [["err", "EACCES"]], got
    assert len(read_bytes(m.path("public.tif@focal=3"))) == len(public_bytes)


def test_store_is_private(mount_factory, public):
    cache = public / "cache"
    cache.mkdir(mode=0o755)  # an old store, open to all: made private
    os.chmod(cache, 0o755)
    m = start(mount_factory, public)
    for n in ("public.tif@focal=3", "secret.tif@focal=3"):
        read_bytes(m.path(n))
    assert os.stat(cache).st_mode & 0o777 == 0o700
    objs = list((cache / "objects").rglob("*.tif"))
    assert len(objs) == 2
    for root, dirs, files in os.walk(cache):
        for d in dirs:
            mode = os.stat(os.path.join(root, d)).st_mode & 0o777
            assert mode == 0o700, (root, d, oct(mode))
        for f in files:
            mode = os.stat(os.path.join(root, f)).st_mode & 0o777
            assert mode & 0o077 == 0, (root, f, oct(mode))
    for o in objs:
        assert o.stat().st_mode & 0o777 == 0o600, o
    got = as_nobody(("listdir", str(cache)), ("read", str(objs[0])),
                    ("listdir", str(cache / "objects")))
    assert got == [["err", "EACCES"]] * 3, got


def test_cancel_and_jobs_file_per_user(mount_factory, public):
    m = start(mount_factory, public, workers=1)
    worker = m.workers_pids()
    assert len(worker) == 1
    os.kill(worker[0], signal.SIGSTOP)  # jobs stay queued or running
    try:
        warm = "user.rasterfs.warm"
        cancel = "user.rasterfs.cancel"
        p = {k: m.path("public.tif@focal=%d" % k) for k in (5, 7, 9, 11)}
        # root's jobs: secret@focal=5, public@focal=11 (nobody may read
        # that file, not cancel root's job); nobody's: public@focal=7;
        # both ask for public@focal=9.
        for path in (m.path("secret.tif@focal=5"), p[11], p[9]):
            assert os.getxattr(path, warm) == b"queued"
        got = as_nobody(("getxattr", p[7], warm), ("getxattr", p[9], warm))
        assert got == [["ok", "queued"]] * 2, got

        text = as_nobody_text(m)
        seen = sorted(j["path"] for j in text)
        assert seen == ["public.tif@focal=7", "public.tif@focal=9"], text
        assert len(jobs(m)) == 4

        # nobody may cancel only the job nobody else asked for.
        got = as_nobody(("getxattr", p[11], cancel),
                        ("getxattr", p[9], cancel),
                        ("getxattr", p[7], cancel))
        assert got == [["err", "EPERM"], ["err", "EPERM"],
                       ["ok", "cancelled"]], got
        assert "cancel public.tif@focal=11 refused: uid 65534" in \
            m.log_text()
        assert os.getxattr(p[11], "user.rasterfs.state") != b"cancelled"
        # root cancels any job.
        assert os.getxattr(p[11], cancel) == b"cancelled"
        assert os.getxattr(p[9], cancel) == b"cancelled"

        # History included: nobody sees their cancelled jobs, not root's.
        ended = {j["path"]: j["state"] for j in as_nobody_text(m)}
        assert ended == {"public.tif@focal=7": "cancelled",
                         "public.tif@focal=9": "cancelled"}, ended
        states = {j["path"]: j["state"] for j in jobs(m)}
        assert states["public.tif@focal=11"] == "cancelled"
        assert states["secret.tif@focal=5"] in ("queued", "running")
    finally:
        os.kill(worker[0], signal.SIGCONT)


def as_nobody_text(m):
    """The jobs file as nobody reads it, parsed."""
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                        "--clear-groups", "cat", m.path(".rasterfs/jobs")],
                       stdout=subprocess.PIPE, check=True, timeout=60)
    return [json.loads(line) for line in r.stdout.decode().splitlines()]
