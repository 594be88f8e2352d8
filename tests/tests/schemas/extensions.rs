//! Extensions of a user message (`tests/corpus/annotated.proto`): typed
//! access through the generated constants, change tracking, and survival
//! through load-modify-save. The Python interop test checks them against
//! Google's runtime.

use pbpersist::extension::Extendable;
use pbpersist::{Database, Persistent, Ref};
use pbpersist_tests::coverage::corpus::annotated::{Account, BADGES, BILLING, Billing, NICKNAME, scope::VERIFIED};
use prost::Message;

#[test]
fn set_read_and_clear_each_kind() {
    let mut a = Account::default();
    assert_eq!(a.extension(&NICKNAME).unwrap(), None);
    assert!(!a.has_extension(&NICKNAME));
    a.set_extension(&NICKNAME, "Ann".into());
    a.set_extension(&BADGES, vec![3, 1, 4]);
    let mut billing = Billing::default();
    billing.set_iban("DE00");
    a.set_extension(&BILLING, billing.clone());
    a.set_extension(&VERIFIED, true);
    assert_eq!(a.extension(&NICKNAME).unwrap().as_deref(), Some("Ann"));
    assert_eq!(a.extension(&BADGES).unwrap(), Some(vec![3, 1, 4]));
    assert_eq!(a.extension(&BILLING).unwrap(), Some(billing));
    assert_eq!(a.extension(&VERIFIED).unwrap(), Some(true));
    // Setting again replaces; clearing removes only that extension.
    a.set_extension(&NICKNAME, "Bo".into());
    a.clear_extension(&BADGES);
    assert_eq!(a.extension(&NICKNAME).unwrap().as_deref(), Some("Bo"));
    assert!(!a.has_extension(&BADGES));
    assert_eq!(a.extension(&VERIFIED).unwrap(), Some(true));
    // They are on the wire after the known fields, and read back.
    a.set_email("a@example.com");
    let again = Account::decode(a.encode_to_vec().as_slice()).unwrap();
    assert_eq!(again.extension(&NICKNAME).unwrap().as_deref(), Some("Bo"));
    assert_eq!(again.email(), "a@example.com");
}

#[test]
fn packed_extensions_read_expanded_input_and_write_packed() {
    // Field 101 expanded: 3, then 1.
    let a = Account::decode([0xa8, 0x06, 3, 0xa8, 0x06, 1].as_slice()).unwrap();
    assert_eq!(a.extension(&BADGES).unwrap(), Some(vec![3, 1]));
    let mut b = Account::default();
    b.set_extension(&BADGES, vec![3, 1]);
    assert_eq!(b.encode_to_vec(), [0xaa, 0x06, 2, 3, 1], "declared [packed = true]");
}

#[test]
fn setting_an_extension_counts_the_object_changed_and_commits_it() {
    let db = Database::in_memory().unwrap();
    let r: Ref<Account> = db
        .transact(|tx| {
            let mut a = Account::default();
            a.set_email("x@example.com");
            tx.add(a)
        })
        .unwrap();
    db.transact(|tx| {
        let a = tx.get_mut(r)?;
        assert!(!a.is_changed());
        a.set_extension(&NICKNAME, "Cy".into());
        assert!(a.is_changed());
        Ok(())
    })
    .unwrap();
    let nickname = db.transact(|tx| Ok(tx.get(r)?.extension(&NICKNAME).unwrap())).unwrap();
    assert_eq!(nickname.as_deref(), Some("Cy"));
}

proptest::proptest! {
    /// Setting an extension replaces its every occurrence, keeps every other
    /// unknown field in order, and reads back; clearing leaves the others.
    #[test]
    fn set_and_clear_keep_the_other_unknown_fields(
        others in proptest::collection::vec((200u32..300, proptest::collection::vec(proptest::num::u8::ANY, 0..4)), 0..5),
        before in proptest::collection::vec(proptest::num::i32::ANY, 0..3),
        after in proptest::collection::vec(proptest::num::i32::ANY, 0..4),
    ) {
        use prost::encoding::{bytes, int32};
        // Unknown fields 200-299 around an expanded occurrence of BADGES (101).
        let mut wire = Vec::new();
        for (i, (number, value)) in others.iter().enumerate() {
            if i == 1 {
                int32::encode_repeated(101, &before, &mut wire);
            }
            bytes::encode(*number, value, &mut wire);
        }
        let mut a = Account::decode(wire.as_slice()).unwrap();
        let without_badges = |a: &Account| {
            let mut rest = a.clone();
            rest.clear_extension(&BADGES);
            rest.encode_to_vec()
        };
        let others_only = without_badges(&a);
        a.set_extension(&BADGES, after.clone());
        let read = a.extension(&BADGES).unwrap().unwrap_or_default();
        proptest::prop_assert_eq!(read, after);
        proptest::prop_assert_eq!(without_badges(&a), others_only);
    }
}
