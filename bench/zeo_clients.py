"""Concurrent ZEO clients: the peer of server-bench's throughput rows.

Usage: python zeo_clients.py <directory> <seconds> <per_transaction> <clients>...

Starts a ZEO server over a FileStorage in <directory>, gives each of the
most clients its own <per_transaction> towers, then for each count of
clients runs that many client processes (processes, so that Python's GIL
does not serialise them) that each commit transactions changing their own
towers for <seconds>. Prints one JSON object: transactions per second by
number of clients.
"""

import json
import multiprocessing
import sys
import time

import transaction
import ZEO

from zodb_bench import Tower, start_zeo


def client(address, index, per_tx, seconds, barrier, results):
    db = ZEO.DB(address)
    conn = db.open()
    towers = conn.root()["clients"][index]
    for t in towers:
        t.height  # loaded before the clock starts
    barrier.wait()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for t in towers:
            t.height += 1.0
        transaction.commit()
        count += 1
    results.put(count)
    conn.close()
    db.close()


def main():
    directory, seconds, per_tx = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    counts = [int(c) for c in sys.argv[4:]]
    address, server = start_zeo(directory)
    try:
        db = ZEO.DB(address)
        conn = db.open()
        conn.root()["clients"] = [
            [Tower(f"c{c}-{i}", 1.0, 1.0) for i in range(per_tx)] for c in range(max(counts))
        ]
        transaction.commit()
        conn.close()
        db.close()
        out = {}
        for k in counts:
            barrier = multiprocessing.Barrier(k + 1)
            results = multiprocessing.Queue()
            workers = [
                multiprocessing.Process(target=client, args=(address, i, per_tx, seconds, barrier, results))
                for i in range(k)
            ]
            for w in workers:
                w.start()
            barrier.wait()
            start = time.perf_counter()
            total = sum(results.get() for _ in workers)
            elapsed = time.perf_counter() - start
            for w in workers:
                w.join()
            out[str(k)] = total / elapsed
        print(json.dumps(out))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
