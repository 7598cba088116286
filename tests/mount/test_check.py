"""`rasterfs check`, and what `rasterfs warm` and `cancel` say about a bad
name (issue 10, item 3).

The oracles are the grammar's own expectations, written independently of
the code: the messages tests/unit/test_chain.c expects (word for word where
that test has the whole sentence), the error table of docs/errors.md (codes
and errnos), and the mount itself, asked with a plain os.stat()."""

import errno
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import rfsmount
from rfsmount import BIN, read_bytes

STEPS = ("proj, focal, reclass, slope, aspect, hillshade, roughness, tri, "
         "tpi, res, size, clip, band, type, nodata, ndi")

# (chain after "dem.tif@", code, errno, exact text the message contains)
BAD = [
    ("fokal=3", "RFS-E100", "ENOENT",
     "'fokal' is not a step; did you mean 'focal'? Steps: " + STEPS),
    ("blur", "RFS-E100", "ENOENT", "'blur' is not a step. Steps: " + STEPS),
    ("focal=3@hilshade", "RFS-E100", "ENOENT", "did you mean 'hillshade'"),
    ("focal=4", "RFS-E101", "EINVAL",
     "focal: SIZE must be an odd integer from 3 to 255, got '4' "
     "(try focal=3 or focal=5)"),
    ("focal=3,meen", "RFS-E101", "EINVAL", "did you mean 'mean'"),
    ("proj=EPSG:3857,bilnear", "RFS-E101", "EINVAL",
     "did you mean 'bilinear'"),
    ("proj=3857", "RFS-E101", "EINVAL", "proj=EPSG:3857"),
    ("reclass=0:200:1,100:300:2", "RFS-E101", "EINVAL",
     "0:200:1 and 100:300:2 overlap"),
    ("slope=percnt", "RFS-E101", "EINVAL", "did you mean 'percent'"),
    ("hillshade=360", "RFS-E101", "EINVAL", "0 <= AZIMUTH < 360"),
    ("aspect=1", "RFS-E101", "EINVAL", "takes no arguments"),
    ("res=0", "RFS-E101", "EINVAL", "positive pixel size"),
    ("size=512", "RFS-E101", "EINVAL", "both W and H"),
    ("clip=100,0,0,50", "RFS-E101", "EINVAL", "MINX >= MAXX"),
    ("band=0", "RFS-E101", "EINVAL", "first band is 1"),
    ("type=Int61", "RFS-E101", "EINVAL", "did you mean 'Int16'"),
    ("nodata=abc", "RFS-E101", "EINVAL", "finite number or 'none'"),
    ("ndi=4,4", "RFS-E101", "EINVAL", "different bands"),
    ("focal=3@@focal=3", "RFS-E101", "EINVAL", "empty step"),
    ("fmt=png@focal=3", "RFS-E101", "EINVAL", "fmt= must be the last step"),
    ("focal=3@fmt=png.tif", "RFS-E101", "EINVAL",
     "the extension .tif contradicts fmt=png"),
    ("proj=EPSG:99999", "RFS-E102", "EINVAL",
     "EPSG:99999 is not a CRS in PROJ's database (e.g. EPSG:4326, "
     "EPSG:3857)"),
    ("proj=EPSG:7030", "RFS-E102", "EINVAL",
     "EPSG:7030 is an ellipsoid (WGS 84) in PROJ's database, not a CRS"),
    ("clip=0,0,1,1,EPSG:99999", "RFS-E102", "EINVAL",
     "EPSG:99999 is not a CRS in PROJ's database"),
    ("@".join(["focal=3"] * 17), "RFS-E104", "ENAMETOOLONG",
     "more than 16 steps"),
    ("proj=EPSG:3857,res=1." + "0" * 80, "RFS-E104", "ENAMETOOLONG",
     "longer"),
]

# Each error's remedy line starts as docs/errors.md's table does.
REMEDY = {
    "RFS-E100": "fix the step name",
    "RFS-E101": "fix the arguments",
    "RFS-E102": "use a CRS code, e.g. EPSG:4326",
    "RFS-E103": "use a path inside the source directory",
    "RFS-E104": "split the work into shorter chains",
    "RFS-E105": "check the source file name",
}

GOOD = [
    ("proj=epsg:3857", "@proj=EPSG:3857,near", "gtiff"),
    ("FOCAL=5,Max,circle", "@focal=5,max,circle", "gtiff"),
    ("reclass=400:inf:3,0:200:1,200:400:2",
     "@reclass=0:200:1,200:400:2,400:inf:3,other=nodata", "gtiff"),
    ("focal=3.png", "@focal=3,mean,square@fmt=png,minmax", "png"),
    ("slope@hillshade", "@slope=degrees@hillshade=315,45,z=1", "gtiff"),
    ("proj=EPSG:32610@fmt=cog.tif", "@proj=EPSG:32610,near@fmt=cog", "cog"),
]


def check(*names, cwd=None):
    cmd = [BIN, "check"] + list(names)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=cwd, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def check_json(*names, cwd=None):
    rc, out, err = check("--json", *names, cwd=cwd)
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == len(names), out + err
    return rc, docs


def field(block, label):
    """The value of 'label' in one name's block of check's text."""
    for line in block.splitlines():
        if line.startswith("  %-8s " % label):
            return line[11:]
    return None


def blocks(out):
    """check's text output, one block per name."""
    res, cur = [], []
    for line in out.splitlines():
        if not line.startswith("  ") and cur:
            res.append("\n".join(cur))
            cur = []
        cur.append(line)
    if cur:
        res.append("\n".join(cur))
    return res


def test_bad_names_without_a_mount(tmp_path):
    """The grammar alone: every code, errno, message and remedy, one name
    at a time (exit status 1) and all at once (one block each)."""
    names = ["dem.tif@" + c for c, *_ in BAD]
    for (chain, code, eno, text), name in zip(BAD, names):
        rc, out, err = check(name, cwd=tmp_path)
        assert rc == 1, (name, out, err)
        b = blocks(out)
        assert len(b) == 1 and b[0].splitlines()[0] == name, out
        assert field(b[0], "verdict").startswith("%s %s: " % (code, eno)), \
            (name, out)
        assert text in field(b[0], "message"), (name, text, out)
        assert field(b[0], "remedy").startswith(REMEDY[code]), (name, out)
        assert field(b[0], "source").startswith("dem.tif (not found here"), \
            out
    assert len(BAD) >= 20
    rc, out, _ = check(*names, cwd=tmp_path)
    assert rc == 1 and len(blocks(out)) == len(BAD)

    rc, docs = check_json(*names, cwd=tmp_path)
    assert rc == 1
    for (chain, code, eno, text), d in zip(BAD, docs):
        assert d["ok"] is False and d["code"] == code and d["errno"] == eno
        assert text in d["message"] and d["remedy"].startswith(REMEDY[code])
        assert d["chain"] is None and d["mount"] is None
        assert d["source"] == "dem.tif" and d["source_found"] is False


def test_good_names_and_exit_status(tmp_path):
    names = ["dem.tif@" + c for c, *_ in GOOD] + ["@focal=3"]
    rc, out, err = check(*names, cwd=tmp_path)
    assert rc == 0, out + err
    for (chain, canonical, fmt), b in zip(GOOD, blocks(out)):
        assert field(b, "verdict") == "ok: a virtual name", b
        assert field(b, "chain") == canonical, b
        assert field(b, "format") == fmt, b
    last = blocks(out)[-1]
    assert field(last, "verdict") == "ok: a chain"
    assert field(last, "chain") == "@focal=3,mean,square"
    assert field(last, "source") is None
    # one bad name among good ones: status 1
    rc, out, _ = check(names[0], "dem.tif@fokal=3", names[1], cwd=tmp_path)
    assert rc == 1 and len(blocks(out)) == 3
    # no name: usage, status 2
    rc, out, err = check()
    assert rc == 2 and "usage: rasterfs check" in err
    # an existing file next to the name is found as the source
    (tmp_path / "a@b.tif").write_bytes(b"x")
    rc, docs = check_json("a@b.tif@focal=3", cwd=tmp_path)
    assert rc == 0 and docs[0]["source"] == "a@b.tif"
    assert docs[0]["source_found"] is True
    # longer than a file name may be: no program could open it
    long = "dem.tif@" + "@".join(["focal=3,mean,square"] * 14)
    assert len(long) > 255
    rc, out, _ = check(long, cwd=tmp_path)
    assert rc == 1 and field(out, "verdict").startswith("RFS-E104")
    assert "longer than 255 bytes" in out


@pytest.fixture
def mnt(mount_factory, tmp_path):
    src = mount_factory.source()
    shutil.copy(src / "opengeos_dtm.tif", src / "dem.tif")
    data = (src / "opengeos_dtm.tif").read_bytes()
    (src / "broken.tif").write_bytes(data[:3000])
    outside = tmp_path / "outside.tif"
    outside.write_bytes(data)
    os.symlink(outside, src / "out.tif")
    return mount_factory(src=src)


ERRNO = {"RFS-E100": errno.ENOENT, "RFS-E101": errno.EINVAL,
         "RFS-E102": errno.EINVAL, "RFS-E103": errno.EACCES,
         "RFS-E104": errno.ENAMETOOLONG, "RFS-E105": errno.ENOENT}


def test_bad_names_in_a_mount(mnt):
    """In a mount the verdict is the mount's: the same codes and messages,
    the source as the mount splits it, escapes and missing sources; and the
    mount refuses each name with the errno docs/errors.md's table gives."""
    cases = [("dem.tif@" + c, code, eno, text) for c, code, eno, text in BAD]
    cases += [
        ("nosuch.tif@focal=3", "RFS-E105", "ENOENT",
         "no regular file of the source tree is named by a prefix of "
         "'nosuch.tif@focal=3' ending before an '@'"),
        ("out.tif@focal=3", "RFS-E103", "EACCES",
         "the source 'out.tif' is a symlink that leaves the source "
         "directory"),
    ]
    paths = [mnt.path(n) for n, *_ in cases]
    rc, out, err = check(*paths)
    assert rc == 1, out + err
    for (name, code, eno, text), path, b in zip(cases, paths, blocks(out)):
        assert b.splitlines()[0] == path
        assert field(b, "verdict").startswith("%s %s: " % (code, eno)), b
        assert text in field(b, "message"), (text, b)
        assert field(b, "remedy").startswith(REMEDY[code]), b
        # the mount agrees, with the errno of docs/errors.md's table
        with pytest.raises(OSError) as e:
            os.stat(path)
        assert e.value.errno == ERRNO[code], (name, e.value)
        assert field(b, "mount") == "%s (source %s): refuses the name " \
            "(%s)" % (mnt.mnt, os.path.realpath(mnt.src), eno), b
    rc, docs = check_json(*paths)
    for (name, code, eno, _), d in zip(cases, docs):
        assert d["code"] == code and d["mount"]["errno"] == eno, d
    assert docs[-2]["source_found"] is False
    assert docs[-1]["source"] == "out.tif"


def test_good_names_in_a_mount_report_the_job(mnt):
    """A good name in a mount: the canonical chain, and what the mount knows
    of its output (from its attributes), never starting a job."""
    name = mnt.path("dem.tif@FOCAL=3")
    started = mnt.stats()["jobs_started"]
    rc, docs = check_json(name)
    d = docs[0]
    assert rc == 0 and d["ok"] and d["chain"] == "@focal=3,mean,square"
    assert d["source"] == "dem.tif" and d["source_found"] is True
    assert d["mount"]["state"] == "absent" and d["mount"]["progress"] == 0
    assert d["mount"]["key"] == os.getxattr(name,
                                            "user.rasterfs.key").decode()
    assert d["mount"]["error"] is None and d["mount"]["errno"] is None
    assert mnt.stats()["jobs_started"] == started, "check started a job"
    read_bytes(name)
    rc, out, _ = check(name)
    assert rc == 0
    assert field(out, "state") == "done, 100% done", out
    assert field(out, "error") == "none"
    # a failed job: its state and error (the jobs file's, independently)
    bad = mnt.path("broken.tif@focal=3")
    with pytest.raises(OSError):
        read_bytes(bad)
    rc, docs = check_json(bad)
    d = docs[0]
    assert rc == 0 and d["ok"], "the name is fine; its job failed"
    jobs = [json.loads(line) for line in
            read_bytes(mnt.path(".rasterfs/jobs")).decode().splitlines()]
    job = [j for j in jobs if j["path"] == "broken.tif@focal=3"][-1]
    assert d["mount"]["state"] == "failed"
    assert d["mount"]["error"] == "%s %s" % (job["error"], job["message"])
    assert d["mount"]["error"].startswith("RFS-E201")
    # real files, control files and probes
    rc, docs = check_json(mnt.path("dem.tif"), mnt.path(".rasterfs/log"),
                          mnt.path("dem.tif@focal=3.aux.xml"))
    assert [d["kind"] for d in docs] == ["real", "control", "probe"]
    assert [d["ok"] for d in docs] == [True, True, False]
    assert rc == 1


def test_warm_and_cancel_explain_a_typo(mnt):
    for cmd in ("warm", "cancel"):
        r = subprocess.run([BIN, cmd, mnt.path("dem.tif@fokal=3")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        err = r.stderr.decode()
        assert r.returncode == 1, (cmd, err)
        assert ("rasterfs %s: %s: RFS-E100 'fokal' is not a step; did you "
                "mean 'focal'?" % (cmd, mnt.path("dem.tif@fokal=3"))) in err
        assert "what to do: fix the step name" in err
    # a glob: every expanded name is explained
    r = subprocess.run([BIN, "warm", mnt.path("*.tif@focal=4")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    err = r.stderr.decode()
    tifs = [p for p in os.listdir(mnt.src) if p.endswith(".tif")
            and os.path.isfile(os.path.join(mnt.src, p))
            and not os.path.islink(os.path.join(mnt.src, p))]
    assert r.returncode == 1
    assert err.count("RFS-E101 focal: SIZE must be an odd integer") \
        == len(tifs), err


def test_check_by_a_user_who_cannot_open_the_source_dir(mount_factory):
    """With allow_other, a user may reach the mount but not the source
    directory behind it (here under a 0700 directory): the check then asks
    the mount alone, and still splits and judges names as it does."""
    base = Path(tempfile.mkdtemp(prefix="rfs-check-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        priv = base / "priv"
        priv.mkdir(mode=0o700)
        src = rfsmount.copy_data(priv / "src")
        subprocess.run(["chmod", "-R", "a+rX", str(src)], check=True)
        m = mount_factory(src=src, cache=base / "cache", mnt=base / "mnt",
                          options=["allow_other"])
        names = [m.path("opengeos_dtm.tif@FOCAL=3"),
                 m.path("opengeos_dtm.tif@focal=3@fokal=3"),
                 m.path("nosuch.tif@focal=3")]
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", BIN, "check", "--json"]
                           + names, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 1, r.stderr.decode()
        docs = [json.loads(x) for x in r.stdout.decode().splitlines()]
        assert docs[0]["ok"] and docs[0]["chain"] == "@focal=3,mean,square"
        assert docs[0]["mount"]["state"] == "absent"
        # the virtual prefix 'opengeos_dtm.tif@focal=3' is not the source
        assert docs[1]["source"] == "opengeos_dtm.tif"
        assert docs[1]["code"] == "RFS-E100" and "did you mean 'focal'?" \
            in docs[1]["message"]
        assert docs[2]["code"] == "RFS-E105"
        assert docs[2]["mount"]["errno"] == "ENOENT"
    finally:
        mount_factory.stop_all()
        shutil.rmtree(base)


def test_check_prints_the_portable_spelling(tmp_path, mount_factory):
    """`rasterfs check` prints the spelling without ':' (issue 12's portable
    names); the oracle is the spelling written out here by hand, and the
    mount takes it as the same cache entry (same user.rasterfs.key)."""
    name = ("dem.tif@proj=EPSG:32610,bilinear@clip=0,0,100,100,EPSG:4326"
            "@reclass=-inf:0:-1,0:100:1,100:inf:2")
    want = ("dem.tif@proj=EPSG_32610,bilinear"
            "@clip=0,0,100,100,EPSG_4326"
            "@reclass=-inf_0_-1,0_100_1,100_inf_2,other=nodata.tif")
    rc, out, err = check(name, cwd=tmp_path)
    assert rc == 0, out + err
    assert field(out, "portable") == want, out
    rc, docs = check_json(name, cwd=tmp_path)
    assert docs[0]["portable"] == want
    # a bad name has none
    rc, docs = check_json("dem.tif@fokal=3", cwd=tmp_path)
    assert rc == 1 and docs[0]["portable"] is None
    # through a mount: both spellings name one key
    src = mount_factory.source()
    shutil.copy(src / "opengeos_dtm.tif", src / "dem.tif")
    m = mount_factory(src=src)
    short = "dem.tif@proj=EPSG:32610,bilinear@focal=3"
    rc, out, _ = check(m.path(short))
    portable = field(out, "portable")
    assert portable == "dem.tif@proj=EPSG_32610,bilinear@focal=3,mean,square.tif"
    k1 = os.getxattr(m.path(short), "user.rasterfs.key")
    k2 = os.getxattr(m.path(portable), "user.rasterfs.key")
    assert k1 == k2
