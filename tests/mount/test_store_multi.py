"""Two daemons, two mount points, one store."""

import random
import threading

from rfsmount import read_bytes
from storeutil import cache_cmd, small_names, verify_clean


def test_two_mounts_one_store(mount_factory, tmp_path):
    names = small_names(24)
    ref = mount_factory(cache=tmp_path / "ref")
    want = {n: read_bytes(ref.path(n)) for n in names}
    ref.stop()

    cache = tmp_path / "shared"
    src = mount_factory.source()
    a = mount_factory(src=src, cache=cache)
    b = mount_factory(src=src, cache=cache)
    errors = []
    lock = threading.Lock()

    def reader(m, seed):
        rng = random.Random(seed)
        order = names[:]
        rng.shuffle(order)
        for n in order + order[:8]:
            try:
                ok = read_bytes(m.path(n)) == want[n]
            except Exception as e:
                ok = False
                n = "%s: %r" % (n, e)
            if not ok:
                with lock:
                    errors.append(n)

    ts = [threading.Thread(target=reader, args=(m, i))
          for i, m in enumerate([a, b, a, b])]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    sa, sb = a.stats(), b.stats()
    # Every key is in the store once; what one mount computed the other
    # found there (a key computed twice at once is the only waste).
    _, st = cache_cmd(cache, "stats")
    assert st["objects"] == len(names)
    assert sa["jobs_started"] + sb["jobs_started"] < 2 * len(names)
    print("jobs: %d + %d for %d keys" % (sa["jobs_started"],
                                          sb["jobs_started"], len(names)))
    # A key computed by a alone is a hit in b.
    extra = "opengeos_dtm.tif@reclass=-inf:50:1,50:inf:2"
    data = read_bytes(a.path(extra))
    j = b.stats()["jobs_started"]
    assert read_bytes(b.path(extra)) == data
    assert b.stats()["jobs_started"] == j
    verify_clean(cache)
