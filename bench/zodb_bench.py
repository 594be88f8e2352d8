"""The Tower workload on Python ZODB: the peer tower-bench compares pbpersist
with. Prints one JSON object of rates and latencies.

Usage: python zodb_bench.py <directory> <n> <per_transaction>   (FileStorage)
       python zodb_bench.py zeo:<directory> <n> <per_transaction>   (ZEO over FileStorage)
       python zodb_bench.py postgresql:<dsn> <n> <per_transaction> [history]   (RelStorage)

FileStorage keeps history by nature; RelStorage runs history-free unless
`history` is given.
"""

import json
import os
import sys
import time

import persistent
import transaction
import ZODB
import ZODB.FileStorage


class Tower(persistent.Persistent):
    def __init__(self, name, width, height, build_year=1900, neighbor=None):
        self.name = name
        self.width = width
        self.height = height
        self.build_year = build_year
        self.neighbor = neighbor


ZEO_ADDRESS = None


def start_zeo(directory):
    """A ZEO server in a process of its own over a FileStorage, on loopback."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "ZEO.runzeo", "-a", f"127.0.0.1:{port}", "-f", os.path.join(directory, "towers.fs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return ("127.0.0.1", port), server


def open_db(target, n, fresh=False):
    if ZEO_ADDRESS is not None:
        import ZEO

        return ZEO.DB(ZEO_ADDRESS, cache_size=n + 1000)
    if target.startswith("postgresql:"):
        # History-free RelStorage, as pbpersist's default, unless asked.
        from relstorage.adapters.postgresql import PostgreSQLAdapter
        from relstorage.options import Options
        from relstorage.storage import RelStorage

        options = Options(keep_history=KEEP_HISTORY)
        adapter = PostgreSQLAdapter(dsn=target[len("postgresql:") :], options=options)
        storage = RelStorage(adapter, options=options)
        if fresh:
            storage.zap_all()
    else:
        storage = ZODB.FileStorage.FileStorage(target)
    return ZODB.DB(storage, cache_size=n + 1000)


KEEP_HISTORY = len(sys.argv) > 4 and sys.argv[4] == "history"


def main():
    global ZEO_ADDRESS
    target, n, per_tx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    zeo_server = None
    if target.startswith("zeo:"):
        target = target[len("zeo:") :]
        ZEO_ADDRESS, zeo_server = start_zeo(target)
    path = target if target.startswith("postgresql:") else os.path.join(target, "towers.fs")
    try:
        run(path, n, per_tx)
    finally:
        if zeo_server is not None:
            zeo_server.kill()
            zeo_server.wait()


def run(path, n, per_tx):
    out = {}

    db = open_db(path, n, fresh=True)
    conn = db.open()
    root = conn.root()
    start = time.perf_counter()
    previous, towers = None, []
    for i in range(n):
        t = Tower(f"tower-{i}", float(i), 10.0, 1900, previous)
        conn.add(t)
        towers.append(t)
        previous = t
        if (i + 1) % per_tx == 0:
            transaction.commit()
    root["last"] = previous
    transaction.commit()
    out["add"] = n / (time.perf_counter() - start)
    oids = [t._p_oid for t in towers]

    start = time.perf_counter()
    for i, t in enumerate(towers):
        t.height = 11.0
        if (i + 1) % per_tx == 0:
            transaction.commit()
    transaction.commit()
    out["update"] = n / (time.perf_counter() - start)
    conn.close()
    db.close()

    db = open_db(path, n)
    conn = db.open()
    latencies = []
    start = time.perf_counter()
    for oid in oids:
        t0 = time.perf_counter()
        obj = conn.get(oid)
        obj._p_activate()
        latencies.append(time.perf_counter() - t0)
    out["cold_load"] = n / (time.perf_counter() - start)
    latencies.sort()
    out["cold_p50_us"] = latencies[len(latencies) // 2] * 1e6
    out["cold_p99_us"] = latencies[int(len(latencies) * 0.99)] * 1e6

    out["hot_read"] = 0
    for _ in range(5):  # the best of five passes, as for pbpersist
        start = time.perf_counter()
        total = 0.0
        for oid in oids:
            total += conn.get(oid).height
        out["hot_read"] = max(out["hot_read"], n / (time.perf_counter() - start))
    conn.close()
    db.close()

    db = open_db(path, n)
    conn = db.open()
    start = time.perf_counter()
    t, visited = conn.root()["last"], 0
    while t is not None:
        t._p_activate()
        visited += 1
        t = t.neighbor
    out["traversal"] = visited / (time.perf_counter() - start)
    conn.close()
    db.close()

    out["version"] = ZODB.__version__ if hasattr(ZODB, "__version__") else "unknown"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
