//! Indexes checked against a model: random adds, changes, failed
//! transactions and reopens of a catalog, after each of which every index
//! query must equal the same query on a `Vec` filtered in memory. Run on
//! SQLite (`tests/tests/indexes.rs`) and PostgreSQL (`tests/tests/postgres.rs`).

use pbpersist::{Database, Enumeration, Error, Ref};
use pbpersist_tests::catalog::{Color, Product};
use proptest::prelude::*;

const NAMES: [&str; 4] = ["anvil", "bolt", "crate", "drill"];
const TAGS: [&str; 3] = ["new", "sale", "heavy"];
const SKUS: [&str; 3] = ["A-1", "B-2", "C-3"];

/// A product as the model keeps it.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    sku: Option<String>,
    name: String,
    price: i64,
    tags: Vec<String>,
    color: i32,
}

impl Model {
    fn product(&self) -> Product {
        let mut p = Product::new();
        if let Some(sku) = &self.sku {
            p.set_sku(sku.clone());
        }
        p.set_name(self.name.clone());
        p.set_price_cents(self.price);
        p.set_tags(self.tags.clone());
        p.set_color(<Color as Enumeration>::from_i32(self.color).expect("a known color"));
        p
    }

    fn apply(&self, p: &mut Product) {
        match &self.sku {
            Some(sku) => p.set_sku(sku.clone()),
            None => p.clear_sku(),
        }
        p.set_name(self.name.clone());
        p.set_price_cents(self.price);
        p.set_tags(self.tags.clone());
        p.set_color(<Color as Enumeration>::from_i32(self.color).expect("a known color"));
    }
}

/// One step of a run.
#[derive(Clone, Debug)]
pub enum Op {
    /// Add a product.
    Add(ModelArgs),
    /// Change the `n`th product (modulo how many there are).
    Change(usize, ModelArgs),
    /// Add and change, then fail the transaction: nothing may remain.
    Fail(ModelArgs),
    /// Open the database again.
    Reopen,
}

/// The fields of a product to add or set.
#[derive(Clone, Debug)]
pub struct ModelArgs {
    sku: Option<usize>,
    name: usize,
    price: i64,
    tags: Vec<usize>,
    color: i32,
}

impl ModelArgs {
    fn model(&self) -> Model {
        let mut tags: Vec<String> = self.tags.iter().map(|t| TAGS[*t].to_owned()).collect();
        tags.dedup();
        Model {
            sku: self.sku.map(|s| SKUS[s].to_owned()),
            name: NAMES[self.name].to_owned(),
            price: self.price,
            tags,
            color: self.color,
        }
    }
}

fn args() -> impl Strategy<Value = ModelArgs> {
    (
        proptest::option::of(0..SKUS.len()),
        0..NAMES.len(),
        -3i64..4,
        proptest::collection::vec(0..TAGS.len(), 0..3),
        0..3i32,
    )
        .prop_map(|(sku, name, price, tags, color)| ModelArgs { sku, name, price, tags, color })
}

/// A run's steps.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => args().prop_map(Op::Add),
        4 => (0..64usize, args()).prop_map(|(n, a)| Op::Change(n, a)),
        1 => args().prop_map(Op::Fail),
        1 => Just(Op::Reopen),
    ];
    proptest::collection::vec(op, 1..24)
}

/// Whether `sku` is held by a product of `model` other than `except`.
fn taken(model: &[(Ref<Product>, Model)], sku: &Option<String>, except: Option<Ref<Product>>) -> bool {
    sku.as_ref().is_some_and(|s| model.iter().any(|(r, m)| Some(*r) != except && m.sku.as_ref() == Some(s)))
}

/// Runs `ops` on databases `open` makes (each over the same, empty data),
/// checking every index after each step.
pub fn run(open: &dyn Fn() -> Database, ops: &[Op]) {
    let open = || {
        let db = open();
        db.build_indexes().unwrap();
        db
    };
    let mut db = open();
    let mut model: Vec<(Ref<Product>, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Add(a) => {
                let m = a.model();
                let result = db.transact(|tx| tx.add(m.product()));
                match result {
                    Ok(r) => {
                        assert!(!taken(&model, &m.sku, None), "a second {:?} was committed", m.sku);
                        model.push((r, m));
                    }
                    Err(Error::Unique { index, .. }) => {
                        assert_eq!(index, Product::BY_SKU.name());
                        assert!(taken(&model, &m.sku, None), "{:?} was refused though free", m.sku);
                    }
                    Err(e) => panic!("add: {e}"),
                }
            }
            Op::Change(n, a) if !model.is_empty() => {
                let i = n % model.len();
                let (r, m) = (model[i].0, a.model());
                let result = db.transact(|tx| {
                    m.apply(tx.get_mut(r)?);
                    Ok(())
                });
                match result {
                    Ok(()) => {
                        assert!(!taken(&model, &m.sku, Some(r)));
                        model[i].1 = m;
                    }
                    Err(Error::Unique { .. }) => assert!(taken(&model, &m.sku, Some(r))),
                    Err(e) => panic!("change: {e}"),
                }
            }
            Op::Change(..) => {}
            Op::Fail(a) => {
                let m = a.model();
                let target = model.first().map(|(r, _)| *r);
                let failed = db.transact(|tx| {
                    tx.add(m.product())?;
                    if let Some(r) = target {
                        m.apply(tx.get_mut(r)?);
                    }
                    Err::<(), _>(Error::NotFound { oid: pbpersist::Oid(1 << 40) })
                });
                assert!(failed.is_err());
            }
            Op::Reopen => {
                drop(db);
                db = open();
            }
        }
        check(&db, &model);
    }
}

/// Every index query equals the model's answer.
fn check(db: &Database, model: &[(Ref<Product>, Model)]) {
    let by = |keep: &dyn Fn(&Model) -> bool| -> Vec<Ref<Product>> {
        let mut refs: Vec<_> = model.iter().filter(|(_, m)| keep(m)).map(|(r, _)| *r).collect();
        refs.sort_by_key(|r| r.oid());
        refs
    };
    db.transact(|tx| {
        for name in NAMES {
            assert_eq!(Product::BY_NAME.get(tx, name)?, by(&|m| m.name == name), "name {name}");
        }
        for tag in TAGS {
            assert_eq!(Product::BY_TAGS.get(tx, tag)?, by(&|m| m.tags.iter().any(|t| t == tag)), "tag {tag}");
        }
        for sku in SKUS {
            let want = by(&|m| m.sku.as_deref() == Some(sku));
            assert_eq!(Product::BY_SKU.find(tx, sku)?, want.first().copied(), "sku {sku}");
        }
        for color in 0..3 {
            assert_eq!(Product::BY_COLOR.get(tx, &color)?, by(&|m| m.color == color), "color {color}");
        }
        // Ranges come in key order, then oid order.
        let mut ranged: Vec<_> = model.iter().filter(|(_, m)| (-1..=2).contains(&m.price)).collect();
        ranged.sort_by_key(|(r, m)| (m.price, r.oid()));
        let want: Vec<_> = ranged.iter().map(|(r, _)| *r).collect();
        assert_eq!(Product::BY_PRICE_CENTS.range(tx, -1..=2, usize::MAX)?, want);
        assert_eq!(Product::BY_PRICE_CENTS.range(tx, -1..=2, 2)?, want.iter().copied().take(2).collect::<Vec<_>>());
        assert_eq!(Product::BY_PRICE_CENTS.count(tx, ..)?, model.len() as u64);
        Ok(())
    })
    .unwrap();
    for check in db.check_indexes().unwrap() {
        assert!(check.is_sound() && check.dangling == 0, "{check:?}");
    }
}
