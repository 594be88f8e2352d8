"""The tree workload on Python ZODB's BTrees: the peer tree-bench compares
pbpersist's PTreeMap with. Prints one JSON object of rates and latencies.

Usage: python zodb_tree_bench.py <directory> <n> <per_transaction> strings|ints

Strings go into an OOBTree, integers into an LOBTree, on FileStorage; the
key orders are the ones `bench/src/trees.rs` computes.
"""

import json
import os
import sys
import time

import transaction
import ZODB
import ZODB.FileStorage
from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree


def walk(n, count, step):
    return [(i * step) % n for i in range(count)]


def main():
    directory, n, per_tx, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    path = os.path.join(directory, f"tree-{kind}.fs")
    key = (lambda i: f"user-{i:07d}") if kind == "strings" else (lambda i: i)
    inserts, lookups = walk(n, n, 1_000_003), walk(n, min(n, 20_000), 7_919)
    ranges, removes = walk(n, min(n, 100), 9_973), walk(n, n // 10, 1_000_033)
    out = {}

    def open_db():
        return ZODB.DB(ZODB.FileStorage.FileStorage(path), cache_size=200_000)

    db = open_db()
    conn = db.open()
    tree = OOBTree() if kind == "strings" else LOBTree()
    conn.root()["tree"] = tree
    transaction.commit()
    start = time.perf_counter()
    for c in range(0, n, per_tx):
        for i in inserts[c : c + per_tx]:
            tree[key(i)] = i
        transaction.commit()
    out["insert"] = n / (time.perf_counter() - start)
    conn.close()
    db.close()

    db = open_db()
    conn = db.open()
    tree = conn.root()["tree"]
    latencies = []
    start = time.perf_counter()
    for i in lookups:
        t0 = time.perf_counter()
        assert tree[key(i)] == i
        latencies.append(time.perf_counter() - t0)
    out["lookup_cold"] = len(lookups) / (time.perf_counter() - start)
    latencies.sort()
    out["cold_p50_us"] = latencies[len(latencies) // 2] * 1e6
    out["cold_p99_us"] = latencies[int(len(latencies) * 0.99)] * 1e6
    start = time.perf_counter()
    for i in lookups:
        tree[key(i)]
    out["lookup_hot"] = len(lookups) / (time.perf_counter() - start)
    conn.close()
    db.close()

    db = open_db()
    conn = db.open()
    tree = conn.root()["tree"]
    read = 0
    start = time.perf_counter()
    for s in ranges:
        scanned = 0
        for k, v in tree.items(min=key(s)):
            scanned += 1
            if scanned == 1000:
                break
        read += scanned
    out["range"] = read / (time.perf_counter() - start)
    conn.close()
    db.close()

    db = open_db()
    conn = db.open()
    tree = conn.root()["tree"]
    start = time.perf_counter()
    for c in range(0, len(removes), per_tx):
        for i in removes[c : c + per_tx]:
            del tree[key(i)]
        transaction.commit()
    out["remove"] = len(removes) / (time.perf_counter() - start)
    conn.close()
    db.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
