"""The index workload on Python ZODB with zope.index: the peer index-bench
compares pbpersist's indexes with. Prints one JSON object of rates,
latencies and how much each kind of query found.

Usage: python zodb_index_bench.py <directory> <n> <per_transaction>

People live in an IOBTree from document id to object, as a catalog's
documents do, with three zope.index FieldIndexes: email, day of birth, and
(city, day of birth) as one tuple value. The baseline stores the same
people in an IOBTree alone. The people, their order and the queries are
the ones `bench/src/indexes.rs` computes.
"""

import json
import math
import os
import sys
import time

import transaction
import ZODB
import ZODB.FileStorage
from BTrees.IOBTree import IOBTree
from persistent import Persistent
from zope.index.field import FieldIndex

DAYS, CITIES, LIMIT = 36_500, 1_000, 100
COMPOSITE_DAYS, COUNT_DAYS = 3_650, 365


class Person(Persistent):
    def __init__(self, email, born, city):
        self.email, self.born, self.city = email, born, city


def email(k):
    return f"user{k:07d}@example.com"


def fields(k):
    h = (k * 2_654_435_761) % (1 << 32)
    return email(k), h % DAYS, f"city-{(h // DAYS) % CITIES:03d}"


def scatter_step(n):
    s = n * 618 // 1000
    while math.gcd(s, n) != 1:
        s += 1
    return s


def walk(count, step, modulus):
    return [(i * step) % modulus for i in range(count)]


def first(pairs, limit):
    """The first `limit` document ids of (value, id set) pairs in value order."""
    ids = []
    for _, docids in pairs:
        for d in docids:
            ids.append(d)
            if len(ids) == limit:
                return ids
    return ids


def measure(out, kind, count, ask):
    """Asks `count` queries cold, timing each, then the best of three hot passes."""
    latencies, found = [], 0
    start = time.perf_counter()
    for j in range(count):
        t0 = time.perf_counter()
        found += ask(j)
        latencies.append(time.perf_counter() - t0)
    out[f"{kind}_cold"] = count / (time.perf_counter() - start)
    latencies.sort()
    out[f"{kind}_p50_us"] = latencies[int(len(latencies) * 0.5)] * 1e6
    out[f"{kind}_p99_us"] = latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)] * 1e6
    out[f"{kind}_found"] = found
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for j in range(count):
            ask(j)
        best = max(best, count / (time.perf_counter() - start))
    out[f"{kind}_hot"] = best


def main():
    directory, n, per_tx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    inserts, emails = walk(n, scatter_step(n), n), walk(min(n, 20_000), 7_919, n)
    born_from = walk(1_000, 7_919, DAYS)
    city_born = [((j * 37) % CITIES, d) for j, d in enumerate(walk(1_000, 7_919, DAYS - COMPOSITE_DAYS))]
    count_from = walk(100, 7_919, DAYS - COUNT_DAYS)
    out = {}

    def open_db(name):
        return ZODB.DB(ZODB.FileStorage.FileStorage(os.path.join(directory, name)), cache_size=200_000)

    for name, indexed in (("people.fs", True), ("plain.fs", False)):
        db = open_db(name)
        conn = db.open()
        root = conn.root()
        root["people"] = people = IOBTree()
        if indexed:
            root["by_email"] = by_email = FieldIndex()
            root["by_born"] = by_born = FieldIndex()
            root["by_city_born"] = by_city_born = FieldIndex()
        transaction.commit()
        start = time.perf_counter()
        for c in range(0, n, per_tx):
            for docid, k in enumerate(inserts[c : c + per_tx], start=c):
                e, born, city = fields(k)
                people[docid] = Person(e, born, city)
                if indexed:
                    by_email.index_doc(docid, e)
                    by_born.index_doc(docid, born)
                    by_city_born.index_doc(docid, (city, born))
            transaction.commit()
        out["insert" if indexed else "insert_plain"] = n / (time.perf_counter() - start)
        conn.close()
        db.close()

    # Each kind of query in a freshly opened database. Equality goes through
    # the index's apply(); ranges and counts read its forward BTree (value to
    # id set) directly, as apply() has neither a limit nor a count.
    def cold(kind, count, ask):
        db = open_db("people.fs")
        conn = db.open()
        measure(out, kind, count, lambda j: ask(conn.root(), j))
        conn.close()
        db.close()

    def by_email(root, j):
        wanted = email(emails[j])
        found = root["by_email"].apply((wanted, wanted))
        for d in found:
            assert root["people"][d].email == wanted
        return len(found)

    def by_born(root, j):
        ids = first(root["by_born"]._fwd_index.items(born_from[j]), LIMIT)
        for d in ids:
            root["people"][d].born
        return len(ids)

    def by_city_born(root, j):
        city, start = f"city-{city_born[j][0]:03d}", city_born[j][1]
        pairs = root["by_city_born"]._fwd_index.items((city, start), (city, start + COMPOSITE_DAYS), excludemax=True)
        ids = first(pairs, LIMIT)
        for d in ids:
            root["people"][d].born
        return len(ids)

    def count(root, j):
        start = count_from[j]
        return sum(len(s) for s in root["by_born"]._fwd_index.values(start, start + COUNT_DAYS, excludemax=True))

    cold("email", len(emails), by_email)
    cold("born", len(born_from), by_born)
    cold("city_born", len(city_born), by_city_born)
    cold("count", len(count_from), count)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
