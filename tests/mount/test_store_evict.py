"""cache_size: the store stays under its limit while readers hammer it,
and every read returns the bytes of a fresh computation."""

import random
import threading
import time

from rfsmount import read_bytes
from storeutil import cache_cmd, small_names, verify_clean

LIMIT = 1 << 20


def test_eviction_under_parallel_readers(mount_factory, tmp_path):
    names = small_names(50)
    # The oracle: a mount of its own with an empty, unlimited store.
    ref = mount_factory(cache=tmp_path / "ref", workers=2)
    want = {n: read_bytes(ref.path(n)) for n in names}
    ref.stop()
    total = sum(len(b) for b in want.values())
    assert total > 3 * LIMIT, "the outputs must not all fit"

    cache = tmp_path / "store"
    m = mount_factory(cache=cache, workers=2,
                      options=["cache_size=%d" % LIMIT])
    rng = random.Random(4)
    plan = [rng.choice(names) for _ in range(500)]
    errors, over = [], []
    done = threading.Event()
    lock = threading.Lock()

    def reader(part):
        for n in part:
            try:
                got = read_bytes(m.path(n))
            except Exception as e:
                with lock:
                    errors.append("%s: %r" % (n, e))
                continue
            if got != want[n]:
                with lock:
                    errors.append("%s: %d bytes differ from a fresh "
                                  "computation" % (n, len(got)))

    def watch():
        while not done.is_set():
            b = m.stats()["store_bytes"]
            if b > LIMIT:
                over.append(b)
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    ts = [threading.Thread(target=reader, args=(plan[i::4],))
          for i in range(4)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    done.set()
    w.join()
    s = m.stats()
    print("500 reads in %.1f s: %d jobs, %d hits, store %d bytes"
          % (time.monotonic() - t0, s["jobs_started"], s["cache_hits"],
             s["store_bytes"]))
    assert not errors, errors[:5]
    assert not over, "store over its limit: %s" % over[:5]
    assert s["store_bytes"] <= LIMIT
    assert s["jobs_started"] > 50, "nothing was evicted"
    _, st = cache_cmd(cache, "stats")
    assert st["bytes"] <= LIMIT and st["limit"] == LIMIT
    verify_clean(cache)
