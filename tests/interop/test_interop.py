"""Interop with Google's protobuf runtime: Python reads what Rust wrote and
writes what Rust reads, for the example schema and the whole corpus; and
docs/format.md's Python examples, run as one program, write what Rust reads.

Run by .ci/run: `pytest tests/interop` with PBPERSIST_WORKER pointing at the
`pbpersist-worker` binary (built from the tests crate).
"""

import importlib
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import grpc_tools
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = os.environ.get("PBPERSIST_WORKER", str(ROOT / "target" / "debug" / "pbpersist-worker"))
# pbpersist's own files, the example schema, and the corpus (corpus/FILES)
# without the Rust-name hazards.
PROTOS = [
    "pbpersist/options.proto",
    "pbpersist/record.proto",
    "pbpersist/tree.proto",
    "pbpersist/objectstore.proto",
    "pbpersist/server.proto",
    "demo.proto",
    "catalog.proto",
] + [
    line
    for line in (ROOT / "tests" / "corpus" / "FILES").read_text().splitlines()
    if line and line != "hazards.proto"
]
# The editions files (tests/editions).
EDITIONS = ["features2023.proto", "defaults2024.proto", "legacy2024.proto"]


def worker(*args):
    subprocess.run([WORKER, *map(str, args)], check=True)


@pytest.fixture(scope="session")
def modules(tmp_path_factory):
    """The Python modules protoc generates from the same .proto files."""
    out = tmp_path_factory.mktemp("pb2")
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{ROOT / 'tests' / 'corpus'}",
        f"-I{ROOT / 'tests' / 'editions'}",
        f"-I{ROOT / 'tests' / 'proto'}",
        f"-I{include}",
        f"--python_out={out}",
    ]
    assert protoc.main(args + PROTOS + EDITIONS) == 0, "protoc failed"
    sys.path.insert(0, str(out))
    loaded = {p: importlib.import_module(p[: -len(".proto")].replace("/", ".") + "_pb2") for p in PROTOS + EDITIONS}
    importlib.import_module("google.protobuf.descriptor_pb2")
    return loaded


def message_class(full_name):
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))


def read_varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def write_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def assert_no_unknown_fields(msg):
    """Every field Rust wrote is one Python's schema knows.

    descriptor.proto is the exception: protox and the Python runtime bundle
    different revisions of it, so a field one knows may be unknown to the other
    (it still round-trips, as an unknown field).
    """
    from google.protobuf import unknown_fields

    if msg.DESCRIPTOR.file.name == "google/protobuf/descriptor.proto":
        return
    assert len(unknown_fields.UnknownFieldSet(msg)) == 0, f"{msg.DESCRIPTOR.full_name} has unknown fields"
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE and field.type != field.TYPE_GROUP:
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values() if field.message_type.fields_by_name["value"].message_type else []
        elif field.is_repeated:
            values = value
        else:
            values = [value]
        for v in values:
            assert_no_unknown_fields(v)


def split_fields(data):
    """A message's fields as (number, wire type, raw bytes of the whole field, payload)."""
    pos, fields = 0, []
    while pos < len(data):
        start = pos
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = read_varint(data, pos)
            payload = None
        elif wire == 1:
            pos += 8
            payload = None
        elif wire == 5:
            pos += 4
            payload = None
        elif wire == 2:
            length, pos = read_varint(data, pos)
            payload = data[pos : pos + length]
            pos += length
        elif wire == 3:
            body, depth = pos, 1
            while depth:
                inner, pos = read_varint(data, pos)
                depth += {3: 1, 4: -1}.get(inner & 7, 0)
                if inner & 7 == 0:
                    _, pos = read_varint(data, pos)
                elif inner & 7 == 1:
                    pos += 8
                elif inner & 7 == 5:
                    pos += 4
                elif inner & 7 == 2:
                    length, pos = read_varint(data, pos)
                    pos += length
            payload = data[body : pos - len(write_varint(number << 3 | 4))]
        else:
            raise AssertionError(f"wire type {wire}")
        fields.append((number, wire, data[start:pos], payload))
    return fields


def canonical(data, descriptor):
    """The bytes with every map's entries sorted, in nested messages too.

    Map order is the one thing protobuf leaves to each runtime (even
    "deterministic" output differs between languages), so byte-for-byte
    comparisons compare everything else exactly.
    """
    out, maps = bytearray(), {}
    for number, wire, raw, payload in split_fields(data):
        field = descriptor.fields_by_number.get(number)
        message_type = field.message_type if field is not None else None
        if message_type is None or payload is None:
            out += raw
            continue
        inner = canonical(payload, message_type)
        if wire == 3:
            out += write_varint(number << 3 | 3) + inner + write_varint(number << 3 | 4)
        elif message_type.GetOptions().map_entry:
            maps.setdefault(number, []).append(write_varint(number << 3 | 2) + write_varint(len(inner)) + inner)
            if len(maps[number]) == 1:
                out += b"\0MAP%d\0" % number
        else:
            out += write_varint(number << 3 | 2) + write_varint(len(inner)) + inner
    for number, entries in maps.items():
        out = out.replace(b"\0MAP%d\0" % number, b"".join(sorted(entries)), 1)
    return bytes(out)


def assert_same_bytes(msg, rust_bytes):
    """Google's runtime writes what pbpersist wrote, byte for byte but for map order."""
    python_bytes = msg.SerializeToString(deterministic=True)
    want, got = canonical(python_bytes, msg.DESCRIPTOR), canonical(rust_bytes, msg.DESCRIPTOR)
    assert want == got, f"{msg.DESCRIPTOR.full_name}: Python {want.hex()} Rust {got.hex()}"
    return python_bytes


def assert_stream_matches(modules, data):
    """Each record of a stream Rust wrote has Google's bytes; returns the types seen."""
    record_cls = modules["pbpersist/record.proto"].Record
    pos, types = 0, set()
    while pos < len(data):
        length, pos = read_varint(data, pos)
        record = record_cls.FromString(data[pos : pos + length])
        pos += length
        msg = message_class(record.type).FromString(record.state)
        assert_no_unknown_fields(msg)
        assert_same_bytes(msg, record.state)
        types.add(record.type)
    return types


def load(conn, oid, record_cls, param="?"):
    (blob,) = conn.execute(f"SELECT record FROM pb_object WHERE oid = {param}", (oid,)).fetchone()
    record = record_cls.FromString(bytes(blob))
    return record, message_class(record.type).FromString(record.state)


def test_python_reads_the_database_rust_wrote(modules, tmp_path):
    worker("interop-write", tmp_path)
    conn = sqlite3.connect(tmp_path / "rust.db")
    check_tower_example(modules, lambda oid, cls: load(conn, oid, cls))
    assert conn.execute("SELECT value FROM pb_meta WHERE key = 'format'").fetchone() == (4,)
    # Each transaction lists the oids it wrote (varints, as a packed repeated uint64).
    for (oids,) in conn.execute("SELECT oids FROM pb_transaction"):
        assert read_varints(bytes(oids)), "a commit lists what it wrote"
    # The example's transaction says who made it and why.
    meta = conn.execute("SELECT user_name, description, extension FROM pb_transaction ORDER BY tid DESC").fetchone()
    assert meta == ("example", "two towers and two contacts", None), meta


def test_python_reads_an_objects_history_with_the_documented_tables(modules, tmp_path):
    worker("interop-write-history", tmp_path)
    conn = sqlite3.connect(tmp_path / "history.db")
    assert conn.execute("SELECT value FROM pb_meta WHERE key = 'history'").fetchone() == (1,)
    record_cls = modules["pbpersist/record.proto"].Record
    root_record, root = load(conn, 0, record_cls)
    pisa = root.entries["pisa"].oid
    # Every state: the current row and the replaced ones, with their transactions.
    rows = conn.execute(
        """SELECT h.tid, h.record, t.user_name, t.description, t.extension
           FROM (SELECT tid, record FROM pb_object WHERE oid = ?1
                 UNION ALL SELECT tid, record FROM pb_object_revision WHERE oid = ?1) AS h
           JOIN pb_transaction AS t ON t.tid = h.tid ORDER BY h.tid""",
        (pisa,),
    ).fetchall()
    extension_cls = modules["pbpersist/record.proto"].TransactionExtension
    heights, users = [], []
    for tid, blob, user, description, extension in rows:
        record = record_cls.FromString(bytes(blob))
        heights.append(message_class(record.type).FromString(record.state).height)
        users.append(user)
        if extension is not None:
            assert dict(extension_cls.FromString(bytes(extension)).entries) == {"reason": "survey"}
    assert heights == [56.0, 57.0, 58.0] and users == ["ada", "bob", "bob"], (heights, users)
    assert rows[0][3] == "builds Pisa"
    # The state as of the first transaction, by the documented query.
    first = rows[0][0]
    (blob,) = conn.execute(
        """SELECT record FROM pb_object WHERE oid = ?1 AND tid <= ?2
           UNION ALL SELECT record FROM pb_object_revision WHERE oid = ?1 AND tid <= ?2 AND end_tid > ?2""",
        (pisa, first),
    ).fetchone()
    record = record_cls.FromString(bytes(blob))
    assert message_class(record.type).FromString(record.state).height == 56.0


def tree_entries(load_state, head):
    """A tree's entries in key order, walked as docs/format.md says."""
    keys_list = {"int64": "ints", "uint64": "uints", "string": "strings", "bytes": "bytes"}[head.key_kind]
    values_list = {"int64": "ints", "string": "strings", "ref": "refs"}[head.value_kind]

    def walk(oid, level):
        if level == head.depth:
            bucket = load_state(oid)
            yield from zip(getattr(bucket.keys, keys_list), getattr(bucket.values, values_list))
        else:
            for child in load_state(oid).children:
                yield from walk(child.oid, level + 1)

    return list(walk(head.root.oid, 0))


def test_python_walks_and_changes_a_tree_rust_wrote(modules, tmp_path):
    import bisect

    worker("interop-write-tree", tmp_path)
    record_cls = modules["pbpersist/record.proto"].Record
    conn = sqlite3.connect(tmp_path / "tree.db", isolation_level=None)
    state = lambda oid: load(conn, oid, record_cls)[1]
    _, root = load(conn, 0, record_cls)
    head_oid = root.entries["tree"].oid
    head = state(head_oid)
    assert (head.key_kind, head.value_kind, head.max_bucket, head.max_node) == ("string", "int64", 8, 4)
    assert head.depth == 4, head.depth
    want = sorted((f"k{i:03}", i * i) for i in range(500) if i % 7)
    assert tree_entries(state, head) == want
    assert state(head.length.oid).value == len(want)

    # Look k000 up as docs/format.md says: it is not there; insert it, set k001.
    oid, level = head.root.oid, 0
    while level < head.depth:
        node = state(oid)
        oid = node.children[bisect.bisect_right(list(node.keys.strings), "k000")].oid
        level += 1
    bucket_record, bucket = load(conn, oid, record_cls)
    keys = list(bucket.keys.strings)
    assert "k000" not in keys and keys[0] == "k001" and len(keys) < head.max_bucket, keys
    bucket.keys.strings.insert(0, "k000")
    bucket.values.ints.insert(0, -1)
    bucket.values.ints[1] = 1001
    length_oid = head.length.oid
    length = state(length_oid)
    length.value += 1

    # Commit as docs/format.md's "Writing" says.
    conn.execute("BEGIN IMMEDIATE")
    tids = dict(conn.execute(f"SELECT oid, tid FROM pb_object WHERE oid IN ({oid}, {length_oid})").fetchall())
    (tid,) = conn.execute("SELECT max(tid) + 1 FROM pb_transaction").fetchone()
    assert max(tids.values()) < tid
    oids = write_varint(oid) + write_varint(length_oid)
    conn.execute(
        "INSERT INTO pb_transaction (tid, committed_at, oids, user_name, description) VALUES (?, ?, ?, 'py', 'k000')",
        (tid, int(time.time() * 1e6), oids),
    )
    for o, msg, type_name in [(oid, bucket, "pbpersist.TreeBucket"), (length_oid, length, "pbpersist.TreeLength")]:
        record = record_cls(type=type_name, state=msg.SerializeToString(), refs=[])
        conn.execute("UPDATE pb_object SET tid = ?, record = ? WHERE oid = ?", (tid, record.SerializeToString(), o))
    conn.execute("COMMIT")
    conn.close()
    worker("interop-check-tree", tmp_path)


def index_key(value):
    """A value encoded as docs/indexes.md says (ints as int64, strings)."""
    if isinstance(value, int):
        return ((value + (1 << 63)) % (1 << 64)).to_bytes(8, "big")
    return value.encode().replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def test_python_looks_up_an_index_by_the_documented_layout(modules, tmp_path):
    import json

    out = subprocess.run([WORKER, "interop-write-index", tmp_path], check=True, capture_output=True, text=True)
    rust = json.loads(out.stdout)
    record_cls = modules["pbpersist/record.proto"].Record
    conn = sqlite3.connect(tmp_path / "index.db")
    state = lambda oid: load(conn, oid, record_cls)[1]
    _, root = load(conn, 0, record_cls)

    def entries(name):
        head = state(root.entries[f"pbpersist.index/{name}"].oid)
        assert head.built_to >= head.build_end, "the index is built"
        tree = state(head.entries.oid)
        assert (tree.key_kind, tree.value_kind) == ("bytes", "uint64")

        def walk(oid, level):
            if level == tree.depth:
                bucket = state(oid)
                yield from zip(bucket.keys.bytes, bucket.values.uints)
            else:
                for child in state(oid).children:
                    yield from walk(child.oid, level + 1)

        return head, list(walk(tree.root.oid, 0))

    # A plain index: the value's encoding, then the oid as 8 bytes.
    head, by_name = entries("catalog.Product.name")
    assert (head.key_kind, head.unique) == ("string", False)
    key = index_key("p3")
    named = [oid for k, oid in by_name if k[:-8] == key]
    assert named == rust["named"] and len(named) == 36
    # A range: from the first encoding up to the last followed by ff x 9.
    _, by_price = entries("catalog.Product.price_cents")
    low, high = index_key(-5), index_key(5) + b"\xff" * 9
    assert [oid for k, oid in by_price if low <= k <= high] == rust["priced"]
    # A unique index: the value's encoding alone.
    head, by_sku = entries("catalog.Product.sku")
    assert head.unique
    assert [oid for k, oid in by_sku if k == index_key("S42")] == [rust["sku"]]
    # Each oid found is a product with that value.
    assert all(state(oid).name == "p3" for oid in named)


FORMAT_MD = ROOT / "docs" / "format.md"


def fenced_blocks(language):
    """docs/format.md's fenced blocks of a language, each as (the line its
    code starts on, the code), in page order."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(FORMAT_MD.read_text().splitlines(), 1):
        if current is None:
            if line.strip() == "```" + language:
                current, start = [], number + 1
        elif line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        else:
            current.append(line)
    return blocks


def test_the_python_examples_of_format_md_write_what_pbpersist_reads(modules, tmp_path):
    """docs/format.md's Python blocks, run in page order as one program
    against a history-preserving database Rust wrote, read what Rust wrote;
    what they commit Rust reads back, checks (every tree rule, gc's reference
    lists, the history) and changes."""
    worker("format-write", tmp_path)
    blocks = fenced_blocks("python")
    assert len(blocks) >= 7, blocks
    namespace = {"__name__": "format_md", "path": str(tmp_path / "format.db")}
    for start, code in blocks:
        # Padded so that a traceback names the line in format.md.
        exec(compile("\n" * (start - 1) + code, str(FORMAT_MD), "exec"), namespace)

    assert namespace["users"] == [(f"user-{i:07}", i) for i in range(5000)]
    history = [(user, tower.height) for _, user, tower in namespace["pisa_history"]]
    assert history == [("ada", 56.0), ("bob", 57.0), ("bob", 58.0)], history
    assert namespace["first"].height == 56.0
    # What the writing example committed reads back through the page's own functions.
    load, entries = namespace["load"], namespace["entries"]
    root = load(0)
    users = list(entries(load, load(root.entries["users"].oid)))
    assert len(users) == 5100 and users == sorted(users)
    assert [s for _, s in entries(load, load(root.entries["scores"].oid))] == [j * j for j in range(40)]
    assert load(root.entries["scores"].oid).depth >= 2, "the new tree's root split"
    assert namespace["revisions"](root.entries["pisa"].oid)[-1][:2] == (namespace["tid"], "py")
    namespace["db"].close()
    worker("format-check", tmp_path)


def test_the_sqlite_tables_of_format_md_are_the_ones_pbpersist_makes(modules, tmp_path):
    """The page's CREATE TABLE block makes the tables of a database Rust
    wrote, column for column, and its as-of query finds each state."""
    worker("format-write", tmp_path)
    rust = sqlite3.connect(tmp_path / "format.db")
    documented = sqlite3.connect(":memory:")
    (create,) = [code for _, code in fenced_blocks("sql") if "INTEGER PRIMARY KEY NOT NULL" in code]
    documented.executescript(create)

    def tables(conn):
        found = {}
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"):
            columns = conn.execute(f"PRAGMA table_info({name})").fetchall()
            found[name] = (columns, "WITHOUT ROWID" in sql)
        return found

    assert tables(documented) == tables(rust)
    keys = {k for (k,) in rust.execute("SELECT key FROM pb_meta")}
    assert keys == {"format", "next_oid", "history", "database_id"}, keys

    (as_of,) = [code for _, code in fenced_blocks("sql") if ":oid" in code]
    record_cls = modules["pbpersist/record.proto"].Record
    pisa = load(rust, 0, record_cls)[1].entries["pisa"].oid
    tids = [tid for (tid,) in rust.execute("SELECT tid FROM pb_transaction WHERE user_name != '' ORDER BY tid")]
    for t, want in zip(tids, [56.0, 57.0, 58.0], strict=True):
        ((tid, blob),) = rust.execute(as_of, {"oid": pisa, "t": t}).fetchall()
        record = record_cls.FromString(bytes(blob))
        assert tid == t and message_class(record.type).FromString(record.state).height == want
    assert rust.execute(as_of, {"oid": pisa, "t": tids[0] - 1}).fetchall() == [], "not built yet"


def read_varints(data):
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            values.append(value)
            value, shift = 0, 0
    assert shift == 0, "the list ends inside a varint"
    return values


def postgres_url():
    return os.environ.get("PBPERSIST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def test_python_reads_what_rust_wrote_to_postgres(modules):
    """Rust writes the example to a PostgreSQL schema; psycopg reads the rows."""
    import psycopg

    try:
        conn = psycopg.connect(postgres_url(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        if os.environ.get("PBPERSIST_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"no PostgreSQL server: {e}")
    schema = f"pbt_py_{os.getpid()}"
    try:
        worker("interop-write-db", f"postgres:{schema}")
        conn.execute(f'SET search_path = "{schema}"')
        check_tower_example(modules, lambda oid, cls: load(conn, oid, cls, "%s"))
        # The PostgreSQL layout has its own version (docs/format.md).
        assert conn.execute("SELECT value FROM pb_meta WHERE key = 'format'").fetchone() == (6,)
        # Each transaction lists the oids it wrote; together they cover every object.
        listed = {oid for (oids,) in conn.execute("SELECT oids FROM pb_transaction") for oid in oids}
        assert listed == {oid for (oid,) in conn.execute("SELECT oid FROM pb_object")}
        record_cls = modules["pbpersist/record.proto"].Record
        for blob, refs in conn.execute("SELECT record, refs FROM pb_object"):
            assert list(record_cls.FromString(bytes(blob)).refs) == refs, "the refs column repeats the record's list"
        files = [f for (f,) in conn.execute("SELECT file FROM pb_schema")]
        assert "demo.proto" in files, files
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def object_store_places(modules, read, names):
    """Where each object's record lies, by docs/format.md: the newest
    checkpoint, then every commit object after it until one is missing.
    `read(name)` returns an object's bytes under the prefix, or None;
    `names(folder)` lists the names in a folder."""
    pb = modules["pbpersist/objectstore.proto"]
    assert read("format") == b"1", "the object-store layout version"
    places, tid = {}, 0
    checkpoints = sorted(names("checkpoint"))
    if checkpoints:
        cp = pb.Checkpoint.FromString(read(f"checkpoint/{checkpoints[-1]}"))
        tid = cp.tid
        places = {o: (t, off, n) for o, t, off, n in zip(cp.oids, cp.tids, cp.offsets, cp.sizes)}
    while True:
        data = read(f"log/{tid + 1:020}")
        if data is None:
            return places, tid
        tid += 1
        size, pos = read_varint(data, 0)
        header = pb.CommitHeader.FromString(data[pos : pos + size])
        offset = pos + size
        for oid, length in zip(header.oids, header.sizes):
            places[oid] = (tid, offset, length)
            offset += length
        assert offset == len(data), "the records fill the rest of the object"
        for oid in header.removed:
            places.pop(oid, None)


def test_python_reads_a_database_on_a_local_object_store(modules, tmp_path):
    """Rust writes the example to a file:// object store; Python reads the
    files with the documented layout alone."""
    place = tmp_path / "store"
    worker("interop-write-db", f"file://{place}")

    def read(name):
        path = place / name
        return path.read_bytes() if path.exists() else None

    def names(folder):
        return [p.name for p in (place / folder).iterdir()] if (place / folder).exists() else []

    places, head = object_store_places(modules, read, names)
    assert head >= 2, "the root's commit and the example's"

    def load_oid(oid, record_cls):
        tid, offset, length = places[oid]
        record = record_cls.FromString(read(f"log/{tid:020}")[offset : offset + length])
        return record, message_class(record.type).FromString(record.state)

    check_tower_example(modules, load_oid)
    # The example's transaction says who made it and why.
    data = read(f"log/{head:020}")
    size, pos = read_varint(data, 0)
    header = modules["pbpersist/objectstore.proto"].CommitHeader.FromString(data[pos : pos + size])
    assert (header.user, header.description) == ("example", "two towers and two contacts")
    assert list(header.oids) == sorted(header.oids)


def check_tower_example(modules, load_oid):
    """The objects of the Tower example, found by following references from the root."""
    record_cls = modules["pbpersist/record.proto"].Record
    root_record, root = load_oid(0, record_cls)
    assert root_record.type == "pbpersist.Root"
    assert sorted(root_record.refs) == sorted(ref.oid for ref in root.entries.values())

    pisa_record, pisa = load_oid(root.entries["pisa"].oid, record_cls)
    assert pisa_record.type == "demo.Tower"
    assert (pisa.name, pisa.width, pisa.build_year) == ("Pisa", 15.5, 1372)
    assert abs(pisa.height - 56.7) < 1e-5
    assert list(pisa_record.refs) == [pisa.neighbor.oid]
    _, rapunzel = load_oid(pisa.neighbor.oid, record_cls)
    assert rapunzel.name == "Rapunzel's"
    assert not rapunzel.HasField("build_year") and rapunzel.build_year == 1900

    _, bob = load_oid(root.entries["bob"].oid, record_cls)
    assert bob.phone == "555-0100" and bob.WhichOneof("reach") == "phone"
    assert dict(bob.labels) == {"team": "blue"}
    _, alice = load_oid(bob.guardians[0].oid, record_cls)
    assert alice.name == "Alice" and alice.address.city == "Springfield"
    assert alice.address.country == "United States"


def test_every_corpus_message_round_trips_through_python(modules, tmp_path):
    worker("interop-write", tmp_path)
    record_cls = modules["pbpersist/record.proto"].Record
    data = (tmp_path / "corpus.bin").read_bytes()
    pos, out, count, types = 0, bytearray(), 0, set()
    while pos < len(data):
        length, pos = read_varint(data, pos)
        record = record_cls.FromString(data[pos : pos + length])
        pos += length
        msg = message_class(record.type).FromString(record.state)
        assert_no_unknown_fields(msg)
        if record.type.startswith("google.protobuf."):
            python_bytes = msg.SerializeToString(deterministic=True)  # another revision of descriptor.proto
        else:
            python_bytes = assert_same_bytes(msg, record.state)
        again = record_cls(type=record.type, state=python_bytes).SerializeToString()
        out += write_varint(len(again)) + again
        count += 1
        types.add(record.type)
    assert len(types) > 60, f"only {len(types)} types"
    (tmp_path / "python_roundtrip.bin").write_bytes(bytes(out))
    write_python_database(modules, tmp_path / "python.db")
    worker("interop-check", tmp_path)
    check_extensions_survived(modules, tmp_path / "python.db")


def test_editions_encode_byte_for_byte_as_googles_runtime(modules, tmp_path):
    """Rust's encoding of every editions type is Python's, byte for byte, and
    what Python writes Rust re-encodes unchanged."""
    worker("interop-write", tmp_path)
    types = assert_stream_matches(modules, (tmp_path / "editions.bin").read_bytes())
    assert len(types) >= 5, types

    ed = modules["features2023.proto"]
    legacy = modules["legacy2024.proto"]
    sample = ed.Sample(key="from python", count=0, limit=0, expanded=[1, 2], unchecked="ok")
    sample.sizes.extend([ed.SIZE_SMALL, ed.SIZE_LARGE])
    sample.delimited.value = 7
    sample.delimited_list.add(value=1)
    sample.delimited_list.add(label="two")
    sample.choice_leaf.label = "in a group"
    sample.leaves["a"].value = 1
    sample.packed.extend([-1, 1])
    # A closed enum number Python does not know: kept with the unknown fields.
    unknown = ed.Sample.FromString(ed.Sample(key="k").SerializeToString() + b"\x30\x07")
    assert not unknown.HasField("size")
    item = legacy.Item(id=1, implicit=0)
    item.child.child.id = 3
    item.prefixed_child.levels.extend([legacy.LEVEL_HIGH])
    item.by_name["x"].packed_levels.extend([legacy.LEVEL_LOW, legacy.LEVEL_HIGH])
    record_cls = modules["pbpersist/record.proto"].Record
    out = bytearray()
    for msg in [sample, unknown, item]:
        record = record_cls(type=msg.DESCRIPTOR.full_name, state=msg.SerializeToString(deterministic=True))
        blob = record.SerializeToString()
        out += write_varint(len(blob)) + blob
    (tmp_path / "editions_python.bin").write_bytes(bytes(out))
    worker("interop-check-editions", tmp_path)


def test_real_world_schemas_encode_byte_for_byte_as_googles_runtime(modules, tmp_path):
    """Google's API annotation and common-type messages (googleapis-common-protos,
    the version tests/fetch-real-protos unpacks): Rust's bytes are Python's."""
    worker("interop-write", tmp_path)
    path = tmp_path / "real.bin"
    if not path.exists():
        if os.environ.get("PBPERSIST_REQUIRE_REAL_PROTOS") == "1":
            raise AssertionError("the worker was built without PBPERSIST_REAL_PROTOS")
        pytest.skip("the worker was built without PBPERSIST_REAL_PROTOS")
    import google.api

    google_dir = pathlib.Path(google.api.__path__[0]).parent
    for module in sorted(google_dir.rglob("*_pb2.py")):
        relative = module.relative_to(google_dir.parent).with_suffix("")
        if relative.parts[1] != "protobuf" and not module.stem.endswith("_grpc_pb2"):
            importlib.import_module(".".join(relative.parts))
    types = assert_stream_matches(modules, path.read_bytes())
    assert len(types) > 100, f"only {len(types)} types"


def check_extensions_survived(modules, path):
    """After Rust changed the account, every extension Python set is there."""
    annotated = modules["annotated.proto"]
    record_cls = modules["pbpersist/record.proto"].Record
    conn = sqlite3.connect(path)
    record, account = load(conn, 5, record_cls)
    assert account.balance == 42, "Rust's change is there"
    assert account.Extensions[annotated.nickname] == "Ext"
    assert list(account.Extensions[annotated.badges]) == [3, 1, 4, 1], "as Rust set it"
    assert account.Extensions[annotated.billing].iban == "DE00"
    assert account.Extensions[annotated.Scope.verified] is True
    assert account.Extensions[annotated.referrer].oid == 6
    assert 6 in record.refs, "the extension's reference stays in the record's list"
    conn.close()


def write_python_database(modules, path):
    """A database written by Python alone, following docs/format.md."""
    demo = modules["demo.proto"]
    pb = modules["pbpersist/options.proto"]
    record_cls = modules["pbpersist/record.proto"].Record
    root_cls = modules["pbpersist/record.proto"].Root
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE pb_meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE pb_transaction (tid INTEGER PRIMARY KEY NOT NULL, committed_at INTEGER NOT NULL, oids BLOB,
                                     user_name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
                                     extension BLOB);
        CREATE TABLE pb_object (oid INTEGER PRIMARY KEY NOT NULL, tid INTEGER NOT NULL, record BLOB NOT NULL);
        CREATE TABLE pb_schema (file TEXT PRIMARY KEY NOT NULL, source TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE pb_object_revision (oid INTEGER NOT NULL, tid INTEGER NOT NULL, end_tid INTEGER NOT NULL,
                                         record BLOB NOT NULL, PRIMARY KEY (oid, tid)) WITHOUT ROWID;
        """
    )
    rapunzel = demo.Tower(name="Rapunzel's", width=1000, height=10)
    pisa = demo.Tower(name="Pisa", width=15.5, height=56.7, build_year=1372, neighbor=pb.Ref(oid=1))
    alice = demo.Contact(name="Alice")
    alice.address.city = "Springfield"
    bob = demo.Contact(name="Bob", phone="555-0100", guardians=[pb.Ref(oid=3)])
    bob.labels["team"] = "blue"
    annotated = modules["annotated.proto"]
    account = annotated.Account(email="ext@example.com", balance=1)
    account.Extensions[annotated.nickname] = "Ext"
    account.Extensions[annotated.badges].extend([3, 1, 4])
    account.Extensions[annotated.billing].iban = "DE00"
    account.Extensions[annotated.Scope.verified] = True
    account.Extensions[annotated.referrer].oid = 6
    referrer = annotated.Account(email="referrer@example.com")
    root = root_cls()
    root.entries["pisa"].oid = 2
    root.entries["bob"].oid = 4
    root.entries["account"].oid = 5
    objects = [
        (0, "pbpersist.Root", root, [2, 4, 5]),
        (1, "demo.Tower", rapunzel, []),
        (2, "demo.Tower", pisa, [1]),
        (3, "demo.Contact", alice, []),
        (4, "demo.Contact", bob, [3]),
        # Reachable only through an extension field.
        (5, "corpus.annotated.Account", account, [6]),
        (6, "corpus.annotated.Account", referrer, []),
    ]
    with conn:
        conn.execute("INSERT INTO pb_meta VALUES ('format', 4), ('next_oid', 7), ('history', 0)")
        oids = bytes(range(len(objects)))  # oids below 128 are one-byte varints
        extension = modules["pbpersist/record.proto"].TransactionExtension(entries={"language": "python"})
        conn.execute(
            "INSERT INTO pb_transaction VALUES (1, ?, ?, 'py', 'written by Python', ?)",
            (int(time.time() * 1e6), oids, extension.SerializeToString()),
        )
        for oid, type_name, msg, refs in objects:
            record = record_cls(type=type_name, state=msg.SerializeToString(), refs=refs)
            conn.execute("INSERT INTO pb_object VALUES (?, 1, ?)", (oid, record.SerializeToString()))
    conn.close()


def test_a_python_grpc_client_reads_commits_and_is_refused_when_it_lies(modules, tmp_path):
    """A client generated from server.proto with grpcio, beside Rust clients
    of the same validating server: it reads what Rust wrote, commits a
    change Rust reads back, is pushed Rust's commit on a watch and sees it
    in its next snapshot, and is refused, with nothing written, when a state does
    not match its type or a reference list lies."""
    import queue

    import grpc

    out = tmp_path / "grpc"
    out.mkdir()
    args = ["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}"]
    assert protoc.main(args + ["pbpersist/server.proto"]) == 0, "protoc failed"
    sys.path.insert(0, str(out))
    server_pb2 = importlib.import_module("pbpersist.server_pb2")
    server_grpc = importlib.import_module("pbpersist.server_pb2_grpc")
    Record = modules["pbpersist/record.proto"].Record
    Tower = modules["demo.proto"].Tower
    Root = message_class("pbpersist.Root")

    (tmp_path / "server.toml").write_text("validate = true\n")
    server = subprocess.Popen(
        [WORKER, "serve", str(tmp_path / "db"), str(tmp_path / "server.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://"), url
        worker("interop-write-db", url)
        channel = grpc.insecure_channel(url[len("http://") :])
        stub = server_grpc.StorageStub(channel)
        hello = stub.Hello(server_pb2.HelloRequest(versions=[1]))
        assert (hello.version, hello.backend, hello.read_only) == (1, "sqlite", False)

        class Session:
            """One Session stream: a request, then its reply."""

            def __init__(self):
                self.requests = queue.Queue()
                self.replies = stub.Session(iter(self.requests.get, None))

            def ask(self, **request):
                self.requests.put(server_pb2.SessionRequest(**request))
                return next(self.replies)

            def load(self, oid):
                (found,) = self.ask(load=server_pb2.Load(oids=[oid])).objects.objects
                return found

            def close(self):
                self.requests.put(None)

        session = Session()
        snapshot = session.ask(begin=server_pb2.Begin()).snapshot
        root = Root.FromString(Record.FromString(session.load(0).record).state)
        pisa_oid = root.entries["pisa"].oid
        pisa = session.load(pisa_oid)
        record = Record.FromString(pisa.record)
        tower = Tower.FromString(record.state)
        assert record.type == "demo.Tower" and tower.name == "Pisa"

        def commit(record):
            write = server_pb2.Write(oid=pisa_oid, base=pisa.tid, record=record.SerializeToString())
            return session.ask(commit=server_pb2.Commit(writes=[write], meta=server_pb2.TransactionMeta(user="python")))

        # Lies are refused, each with its reason, and nothing is written.
        # (A Begin while a snapshot is open is refused: end this one first.)
        assert session.ask(end=server_pb2.End()).HasField("done")
        garbage = Record(type="demo.Tower", state=b"\xff\xff\xff", refs=record.refs)
        liar = Record(type="demo.Tower", state=record.state, refs=[])
        for bad, says in [(garbage, "does not decode as demo.Tower"), (liar, "does not match the references")]:
            session.ask(begin=server_pb2.Begin())
            failure = commit(bad).failure
            assert failure.kind == server_pb2.Failure.INVALID and says in failure.message, failure
        session.ask(begin=server_pb2.Begin())
        assert session.load(pisa_oid).tid == pisa.tid

        tower.height = 60.5
        changed = Record(type=record.type, state=tower.SerializeToString(), refs=record.refs)
        tid = commit(changed).committed.tid
        assert tid > snapshot.tid
        height = subprocess.run([WORKER, "tower-height", url, "pisa"], check=True, capture_output=True, text=True)
        assert float(height.stdout) == 60.5

        # Rust commits: the server pushes it to Python's watch, and Python's
        # next snapshot lists the root as changed.
        watch = stub.Watch(server_pb2.WatchRequest(since=tid))
        worker("interop-write-db", url)
        pushed = next(watch)
        assert pushed.tid > tid and pushed.oids_known and 0 in pushed.oids, pushed
        watch.cancel()
        later = session.ask(begin=server_pb2.Begin(since=tid)).snapshot
        assert 0 in {c.oid for c in later.changed}, later
        session.close()
        channel.close()
    finally:
        server.kill()
        server.wait()
