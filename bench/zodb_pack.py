"""Packing ZODB's FileStorage, the peer history-bench compares pbpersist's
pack with. Two steps, each its own process so that the pack's peak memory
is its own:

  python zodb_pack.py build <directory> <objects> <rounds>   writes objects x rounds replaced states
  python zodb_pack.py pack <directory>                       packs to now; prints JSON (seconds, peak KiB)
"""

import json
import os
import resource
import sys
import time

import persistent
import transaction
import ZODB
import ZODB.FileStorage


class Counter(persistent.Persistent):
    def __init__(self):
        self.value = 0


def build(directory, objects, rounds):
    db = ZODB.DB(ZODB.FileStorage.FileStorage(os.path.join(directory, "pack.fs")), cache_size=objects + 1000)
    conn = db.open()
    root = conn.root()
    root["counters"] = counters = [Counter() for _ in range(objects)]
    transaction.commit()
    for r in range(rounds):
        for i, c in enumerate(counters):
            c.value = r + 1
            if (i + 1) % 1000 == 0:
                transaction.commit()
        transaction.commit()
    conn.close()
    db.close()


def pack(directory):
    storage = ZODB.FileStorage.FileStorage(os.path.join(directory, "pack.fs"))
    db = ZODB.DB(storage)
    start = time.perf_counter()
    db.pack(time.time())
    seconds = time.perf_counter() - start
    db.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_kib": peak}))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        pack(sys.argv[2])
