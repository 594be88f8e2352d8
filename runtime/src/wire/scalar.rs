//! Writers of single scalar fields, one module per protobuf type, each with
//! an `encode` of the signature prost's has. They write the same bytes as
//! prost's; the difference is where the key is written. Generated code passes
//! the field number as a constant, and these are always inlined, so a key of
//! field number 1 to 15 is one constant byte instead of a call to the varint
//! writer (for `demo.Tower`, five calls of ten per encode). Repeated, packed
//! and map fields keep prost's writers.

use ::bytes::BufMut;
use prost::encoding::{WireType, encode_varint};

/// Writes a field's key.
#[inline(always)]
pub fn key(tag: u32, wire_type: WireType, buf: &mut impl BufMut) {
    varint(u64::from(tag << 3 | wire_type as u32), buf);
}

/// Writes a varint; one that fits in a byte without a call.
#[inline(always)]
pub fn varint(value: u64, buf: &mut impl BufMut) {
    if value < 0x80 {
        buf.put_u8(value as u8);
    } else {
        encode_varint(value, buf);
    }
}

macro_rules! fixed {
    ($($name:ident: $ty:ty, $put:ident, $wire:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` fields.")]
        pub mod $name {
            use super::*;
            /// Writes one field.
            #[inline(always)]
            pub fn encode(tag: u32, value: &$ty, buf: &mut impl BufMut) {
                key(tag, WireType::$wire, buf);
                buf.$put(*value);
            }
        }
    )*};
}

fixed! {
    float: f32, put_f32_le, ThirtyTwoBit;
    double: f64, put_f64_le, SixtyFourBit;
    fixed32: u32, put_u32_le, ThirtyTwoBit;
    sfixed32: i32, put_i32_le, ThirtyTwoBit;
    fixed64: u64, put_u64_le, SixtyFourBit;
    sfixed64: i64, put_i64_le, SixtyFourBit;
}

macro_rules! varints {
    ($($name:ident: $ty:ty, |$v:ident| $to_u64:expr;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` fields.")]
        pub mod $name {
            use super::*;
            /// Writes one field.
            #[inline(always)]
            pub fn encode(tag: u32, value: &$ty, buf: &mut impl BufMut) {
                key(tag, WireType::Varint, buf);
                let $v = *value;
                varint($to_u64, buf);
            }
        }
    )*};
}

varints! {
    // Negative int32 values are sign-extended to ten bytes, as protobuf specifies.
    int32: i32, |v| v as i64 as u64;
    int64: i64, |v| v as u64;
    uint32: u32, |v| u64::from(v);
    uint64: u64, |v| v;
    sint32: i32, |v| u64::from(((v << 1) ^ (v >> 31)) as u32);
    sint64: i64, |v| ((v << 1) ^ (v >> 63)) as u64;
    bool: bool, |v| u64::from(v);
}

macro_rules! delimited {
    ($($name:ident: $ty:ty;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` fields.")]
        pub mod $name {
            use super::*;
            /// Writes one field.
            #[inline(always)]
            pub fn encode(tag: u32, value: &$ty, buf: &mut impl BufMut) {
                key(tag, WireType::LengthDelimited, buf);
                varint(value.len() as u64, buf);
                buf.put_slice(value.as_ref());
            }
        }
    )*};
}

delimited! {
    string: String;
    bytes: Vec<u8>;
}

/// Reference fields (`pbpersist.Ref`, a message of one field).
pub mod reference {
    use super::*;
    /// Writes one field.
    #[inline(always)]
    pub fn encode<T: ?Sized + 'static>(tag: u32, value: &crate::Ref<T>, buf: &mut impl BufMut) {
        key(tag, WireType::LengthDelimited, buf);
        varint(prost::Message::encoded_len(value) as u64, buf);
        prost::Message::encode_raw(value, buf);
    }
}

#[cfg(test)]
mod tests {
    use prost::encoding as theirs;

    /// Both writers, for every edge tag and each value.
    macro_rules! same_bytes {
        ($($name:ident: [$($v:expr),*];)*) => {$(
            for tag in [1, 15, 16, 2047, 2048, (1 << 29) - 1] {
                for v in [$($v),*] {
                    let (mut ours, mut prost) = (Vec::new(), Vec::new());
                    super::$name::encode(tag, &v, &mut ours);
                    theirs::$name::encode(tag, &v, &mut prost);
                    assert_eq!(ours, prost, "{} {tag} {v:?}", stringify!($name));
                }
            }
        )*};
    }

    #[test]
    fn each_writer_writes_what_prost_writes() {
        same_bytes! {
            float: [0.0, -1.5, f32::MAX, f32::NAN];
            double: [0.0, -1.5, f64::MIN_POSITIVE];
            fixed32: [0, 1, u32::MAX];
            sfixed32: [0, -1, i32::MIN];
            fixed64: [0, u64::MAX];
            sfixed64: [0, -1, i64::MIN];
            int32: [0, 1, 127, 128, -1, i32::MIN, i32::MAX];
            int64: [0, 127, 128, -1, i64::MIN, i64::MAX];
            uint32: [0, 127, 128, u32::MAX];
            uint64: [0, 127, 128, u64::MAX];
            sint32: [0, 63, -64, 64, -65, i32::MIN, i32::MAX];
            sint64: [0, -1, i64::MIN, i64::MAX];
            bool: [false, true];
            string: [String::new(), "x".repeat(127), "y".repeat(128)];
            bytes: [Vec::new(), vec![1u8; 300]];
        }
        for oid in [0, 1, 127, 128, u64::MAX] {
            let r = crate::Ref::<()>::new(crate::Oid(oid));
            let (mut ours, mut prost) = (Vec::new(), Vec::new());
            super::reference::encode(5, &r, &mut ours);
            theirs::message::encode(5, &r, &mut prost);
            assert_eq!(ours, prost, "ref {oid}");
        }
    }
}
