//! Indexes declared in `.proto` (`tests/proto/catalog.proto`), through the
//! generated API on SQLite: the model check, references as keys (who points
//! at an object), and the stored schema that says which fields are indexed.
//! The storage suite (`pbpersist::conformance::indexes`) runs the
//! hand-declared indexes on every backend.

mod index_model;

use pbpersist::{Database, Error};
use pbpersist_tests::catalog::{Color, Product, Supplier};
use proptest::prelude::*;

fn sqlite(dir: &tempfile::TempDir, n: u32) -> impl Fn() -> Database {
    let path = dir.path().join(format!("catalog-{n}.db"));
    move || {
        let db = Database::open(&path).unwrap();
        db.build_indexes().unwrap();
        db
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn queries_equal_a_model_on_sqlite(ops in index_model::ops()) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static RUN: AtomicU32 = AtomicU32::new(0);
        let dir = pbpersist_tests::scratch_dir();
        index_model::run(&sqlite(&dir, RUN.fetch_add(1, Ordering::Relaxed)), &ops);
    }
}

#[test]
fn a_reference_index_finds_who_points_at_an_object() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let (acme, globex) = db
        .transact(|tx| {
            let mut s = Supplier::new();
            s.set_name("Acme");
            let acme = tx.add(s.clone())?;
            s.set_name("Globex");
            Ok((acme, tx.add(s)?))
        })
        .unwrap();
    let (a, b) = db
        .transact(|tx| {
            let mut p = Product::new();
            p.set_name("anvil");
            p.set_supplier(acme);
            let a = tx.add(p.clone())?;
            p.set_name("bolt");
            Ok((a, tx.add(p)?))
        })
        .unwrap();
    db.transact(|tx| {
        assert_eq!(Product::BY_SUPPLIER.get(tx, &acme.oid().0)?, [a, b]);
        assert_eq!(Product::BY_SUPPLIER.get(tx, &globex.oid().0)?, []);
        tx.get_mut(b)?.set_supplier(globex);
        Ok(())
    })
    .unwrap();
    db.transact(|tx| {
        assert_eq!(Product::BY_SUPPLIER.get(tx, &acme.oid().0)?, [a]);
        assert_eq!(Product::BY_SUPPLIER.get(tx, &globex.oid().0)?, [b]);
        assert_eq!(Product::BY_COLOR.get(tx, &(Color::Unspecified as i32))?, [a, b]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_unique_violation_names_the_index_the_key_and_both_objects() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let mut p = Product::new();
    p.set_sku("A-1");
    p.set_color(Color::Red);
    let first = db.transact(|tx| tx.add(p.clone())).unwrap();
    let last = db.last_transactions(1).unwrap()[0].tid;
    let err = db.transact(|tx| tx.add(p.clone())).unwrap_err();
    let Error::Unique { index, key, oid, existing } = &err else { panic!("{err}") };
    assert_eq!((index.as_str(), key.as_str(), *existing), ("catalog.Product.sku", "\"A-1\"", first.oid()));
    assert_eq!(
        err.to_string(),
        format!("object {oid} cannot take key \"A-1\" of unique index catalog.Product.sku: object {existing} has it")
    );
    assert_eq!(db.last_transactions(1).unwrap()[0].tid, last, "nothing was written");
}

#[test]
fn the_stored_schema_says_which_fields_are_indexed() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    db.transact(|tx| tx.add(Product::new())).unwrap();
    let files = db.storage().schemas().unwrap();
    let (_, catalog) = files.iter().find(|(name, _)| name == "catalog.proto").expect("catalog.proto is stored");
    assert!(catalog.contains("optional string sku = 1 [(pbpersist.index) = {unique: true}];"), "{catalog}");
    assert!(catalog.contains("repeated string tags = 4 [(pbpersist.index) = {}];"), "{catalog}");
    assert!(catalog.contains("import \"pbpersist/options.proto\";"), "{catalog}");
    // Other languages compile it.
    pbpersist::reflect::Schemas::compile(&files).expect("the stored files compile");
}

#[test]
fn a_composite_index_and_an_extent_declared_in_proto() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let products: Vec<_> = db
        .transact(|tx| {
            [("anvil", 300), ("anvil", 100), ("bolt", 200), ("anvil", 200)]
                .into_iter()
                .map(|(name, price)| {
                    let mut p = Product::new();
                    p.set_name(name);
                    p.set_price_cents(price);
                    tx.add(p)
                })
                .collect::<pbpersist::Result<Vec<_>>>()
        })
        .unwrap();
    db.transact(|tx| {
        // Anvils by price, then the one at 200 or more, cheapest first.
        let anvils = Product::BY_NAME_AND_PRICE_CENTS.query().leading("anvil").fetch(tx)?;
        assert_eq!(anvils.refs, [products[1], products[3], products[0]]);
        let from_200 = Product::BY_NAME_AND_PRICE_CENTS
            .query()
            .range(("anvil".to_owned(), 200)..=("anvil".to_owned(), i64::MAX))
            .limit(1)
            .fetch(tx)?;
        assert_eq!(from_200.refs, [products[3]]);
        // Every product, in oid order, and how many there are.
        assert_eq!(Product::EXTENT.query().fetch(tx)?.refs, products);
        assert_eq!(Product::EXTENT.query().count(tx)?, 4);
        assert_eq!(Product::EXTENT.name(), "catalog.Product.extent");
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_index_of_a_field_of_an_embedded_message() {
    use pbpersist_tests::catalog::Address;
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let supplier = |name: &str, city: Option<&str>| {
        let mut s = Supplier::new();
        s.set_name(name);
        if let Some(city) = city {
            let mut a = Address::new();
            a.set_city(city);
            s.set_address(a);
        }
        s
    };
    let (acme, bolts, nowhere) = db
        .transact(|tx| {
            Ok((
                tx.add(supplier("acme", Some("Oslo")))?,
                tx.add(supplier("bolts", Some("Bergen")))?,
                tx.add(supplier("nowhere", None))?,
            ))
        })
        .unwrap();
    assert_eq!(Supplier::BY_ADDRESS_CITY.name(), "catalog.Supplier.address.city");
    db.transact(|tx| {
        assert_eq!(Supplier::BY_ADDRESS_CITY.get(tx, "Oslo")?, [acme]);
        // A supplier without an address has no entry.
        assert_eq!(Supplier::BY_ADDRESS_CITY.query().count(tx)?, 2);
        // Moving changes the entry in the same commit.
        tx.get_mut(bolts)?.address_mut().set_city("Oslo");
        tx.get_mut(nowhere)?.set_address(Address::new());
        Ok(())
    })
    .unwrap();
    db.transact(|tx| {
        assert_eq!(Supplier::BY_ADDRESS_CITY.get(tx, "Oslo")?, [acme, bolts]);
        assert_eq!(Supplier::BY_ADDRESS_CITY.get(tx, "Bergen")?, []);
        assert_eq!(Supplier::BY_ADDRESS_CITY.get(tx, "")?, [nowhere]);
        Ok(())
    })
    .unwrap();
    assert!(db.check_indexes().unwrap().iter().all(|c| c.is_sound()));
    // The stored schema declares it, so tools without these types agree.
    let files = db.storage().schemas().unwrap();
    let (_, catalog) = files.iter().find(|(name, _)| name == "catalog.proto").unwrap();
    assert!(catalog.contains("option (pbpersist.composite_index) = {fields: [\"address.city\"]};"), "{catalog}");
    let schemas = pbpersist::reflect::Schemas::compile(&files).unwrap();
    let (stored, refused) = pbpersist::index::stored_indexes(&schemas);
    assert_eq!(refused, Vec::<String>::new());
    let checks = db.check_stored_indexes(&stored).unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c.index.as_str()).collect();
    assert!(names.contains(&"catalog.Supplier.address.city"), "{names:?}");
    assert!(checks.iter().all(|c| c.is_sound()), "{checks:?}");
}

/// A person with a home, declared with the derive: a nested path says the
/// type of the embedded message's field.
#[derive(Clone, PartialEq, pbpersist::Persistent)]
#[pbpersist(message = "derived.Person", index(fields("home.city: string", "born")))]
struct Person {
    #[pbpersist(tag = 1, optional, message)]
    home: Option<Home>,
    #[pbpersist(tag = 2, int64)]
    born: i64,
    #[pbpersist(meta)]
    meta: pbpersist::Meta,
}

#[derive(Clone, PartialEq, pbpersist::Persistent)]
#[pbpersist(message = "derived.Home")]
struct Home {
    #[pbpersist(tag = 1, string)]
    city: String,
    #[pbpersist(meta)]
    meta: pbpersist::Meta,
}

#[test]
fn a_derived_composite_index_through_an_embedded_message() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let person = |city: &str, born| Person {
        home: Some(Home { city: city.into(), ..Default::default() }),
        born,
        ..Default::default()
    };
    let people = db
        .transact(|tx| {
            [person("Oslo", 1990), person("Rome", 1985), person("Oslo", 1970), person("Oslo", 2001)]
                .into_iter()
                .map(|p| tx.add(p))
                .collect::<pbpersist::Result<Vec<_>>>()
        })
        .unwrap();
    db.transact(|tx| {
        let name = Person::BY_HOME_CITY_AND_BORN.name();
        assert_eq!(name, "derived.Person.home.city+born");
        let oslo = Person::BY_HOME_CITY_AND_BORN.query().leading("Oslo").fetch(tx)?;
        assert_eq!(oslo.refs, [people[2], people[0], people[3]]);
        let young =
            Person::BY_HOME_CITY_AND_BORN.query().range(("Oslo".to_owned(), 1980)..=("Oslo".to_owned(), i64::MAX));
        let young = young.fetch(tx)?;
        assert_eq!(young.refs, [people[0], people[3]]);
        Ok(())
    })
    .unwrap();
    let files = db.storage().schemas().unwrap();
    let (_, derived) = files.iter().find(|(name, _)| name == "derived.proto").unwrap();
    assert!(derived.contains("option (pbpersist.composite_index) = {fields: [\"home.city\", \"born\"]};"), "{derived}");
}

#[test]
fn the_queries_of_docs_indexes_compile_and_answer() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let (acme, drill, bolt) = db
        .transact(|tx| {
            let acme = tx.add(Supplier::new())?;
            let mut drill = Product::new();
            drill.set_name("drill");
            drill.set_sku("A-1");
            drill.set_price_cents(450);
            drill.tags_mut().push("sale".into());
            drill.set_supplier(acme);
            let mut bolt = Product::new();
            bolt.set_name("bolt");
            bolt.set_price_cents(900);
            Ok((acme, tx.add(drill)?, tx.add(bolt)?))
        })
        .unwrap();
    // The block of docs/indexes.md's "Queries", as written there.
    db.transact(|tx| {
        let drills: Vec<pbpersist::Ref<Product>> = Product::BY_NAME.get(tx, "drill")?;
        let one: Option<pbpersist::Ref<Product>> = Product::BY_SKU.find(tx, "A-1")?;
        let cheap = Product::BY_PRICE_CENTS.range(tx, 0..500, 20)?; // at most 20
        let on_sale: u64 = Product::BY_TAGS.query().eq("sale").count(tx)?;
        let a_to_c = Product::BY_NAME.range(tx, "a".."d", 50)?;
        let from_acme = Product::BY_SUPPLIER.get(tx, &acme.oid().0)?;
        assert_eq!((drills, one, cheap, on_sale), (vec![drill], Some(drill), vec![drill], 1));
        assert_eq!((a_to_c, from_acme), (vec![bolt], vec![drill]));
        Ok(())
    })
    .unwrap();
}

#[test]
fn gc_removes_the_entries_of_the_objects_it_removes() {
    let dir = pbpersist_tests::scratch_dir();
    let db = sqlite(&dir, 0)();
    let product = |name: &str, sku: &str| {
        let mut p = Product::new();
        p.set_name(name);
        p.set_sku(sku);
        p.tags_mut().push("t".into());
        p
    };
    let (kept, lost) = db
        .transact(|tx| {
            let kept = tx.add(product("kept", "K-1"))?;
            let lost = tx.add(product("lost", "L-1"))?;
            tx.root_mut()?.insert("kept", kept);
            Ok((kept, lost))
        })
        .unwrap();
    let report = db.gc(false).unwrap();
    assert!(report.unreachable.contains(&lost.oid()) && !report.unreachable.contains(&kept.oid()));
    // name, sku, tags, price and color (defaults have entries), the
    // composite and the extent: one entry each.
    assert_eq!(report.index_entries, 7, "{report:?}");
    for check in db.check_indexes().unwrap() {
        assert!(check.is_sound() && check.dangling == 0, "{check:?}");
    }
    db.transact(|tx| {
        assert_eq!(Product::BY_TAGS.query().eq("t").count(tx)?, 1, "a count no longer includes it");
        assert_eq!(Product::EXTENT.query().fetch(tx)?.refs, [kept]);
        // Its unique key is free again.
        tx.add(product("again", "L-1")).map(drop)
    })
    .unwrap();
}
