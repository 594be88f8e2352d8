//! Typed access to extension fields (proto2 `extend Msg { ... }`).
//!
//! An extension's value lives on the wire among the message's unknown
//! fields, so it survives load-modify-save whether or not the program knows
//! it. pbpersist-build writes one [`Extension`] constant per extension of a
//! generated message; [`Extendable`] reads and writes through it.
//!
//! ```
//! use pbpersist::extension::{self, Extendable, Extension};
//! use pbpersist::wkt::Empty;
//!
//! const NICKNAME: Extension<Empty, extension::Str> = Extension::new("demo.nickname", 100);
//! let mut msg = Empty::default();
//! msg.set_extension(&NICKNAME, "Ann".to_owned());
//! assert_eq!(msg.extension(&NICKNAME).unwrap().as_deref(), Some("Ann"));
//! assert!(pbpersist::Persistent::is_changed(&msg));
//! ```

use crate::{EnumValue, Persistent};
use bytes::Buf;
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType, decode_key, skip_field};
use std::marker::PhantomData;

/// The extension field `name` (its full protobuf name), number `number`, of
/// messages of type `M`, whose values `C` reads and writes.
pub struct Extension<M, C> {
    name: &'static str,
    number: u32,
    types: PhantomData<fn() -> (M, C)>,
}

impl<M, C> Extension<M, C> {
    /// Describes an extension.
    pub const fn new(name: &'static str, number: u32) -> Self {
        Extension { name, number, types: PhantomData }
    }

    /// The full protobuf name, such as `demo.nickname`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The field number.
    pub const fn number(&self) -> u32 {
        self.number
    }
}

impl<M, C> std::fmt::Debug for Extension<M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extension({} = {})", self.name, self.number)
    }
}

/// How one extension value is read from and written to the wire.
pub trait Codec {
    /// The Rust value.
    type Value;
    /// Reads the occurrences of field `number` in `fields` (encoded fields);
    /// `None` when there is none.
    fn read(fields: &[u8], number: u32) -> Result<Option<Self::Value>, DecodeError>;
    /// Writes `value` as field `number`.
    fn write(value: &Self::Value, number: u32, buf: &mut Vec<u8>);
}

/// Reads and writes extension fields of a message.
pub trait Extendable: Persistent {
    /// The extension's value, if the message has it; an error if its bytes
    /// do not decode as the extension's type.
    fn extension<C: Codec>(&self, ext: &Extension<Self, C>) -> Result<Option<C::Value>, DecodeError> {
        C::read(self.meta().unknown_fields(), ext.number)
    }

    /// Whether the message has the extension.
    fn has_extension<C: Codec>(&self, ext: &Extension<Self, C>) -> bool {
        occurrences(self.meta().unknown_fields(), ext.number).is_some_and(|f| !f.is_empty())
    }

    /// Sets the extension, replacing what it held, and counts the object changed.
    fn set_extension<C: Codec>(&mut self, ext: &Extension<Self, C>, value: C::Value) {
        let mut fields = without(self.meta().unknown_fields(), ext.number);
        C::write(&value, ext.number, &mut fields);
        self.meta_mut().replace_unknown(&fields);
        self.meta_mut().touch();
    }

    /// Removes the extension and counts the object changed if it had it.
    fn clear_extension<C: Codec>(&mut self, ext: &Extension<Self, C>) {
        if self.has_extension(ext) {
            let fields = without(self.meta().unknown_fields(), ext.number);
            self.meta_mut().replace_unknown(&fields);
            self.meta_mut().touch();
        }
    }
}

impl<M: Persistent> Extendable for M {}

/// Each field's (number, wire type, bytes after the key, whole field)
/// among encoded fields, or `None` if they do not parse.
type Field<'a> = (u32, WireType, &'a [u8], &'a [u8]);

fn fields(mut buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let start = buf;
        let (number, wire) = decode_key(&mut buf).ok()?;
        let value = buf;
        skip_field(wire, number, &mut buf, DecodeContext::default()).ok()?;
        let used = start.len() - buf.len();
        out.push((number, wire, &value[..value.len() - buf.len()], &start[..used]));
    }
    Some(out)
}

fn occurrences(all: &[u8], number: u32) -> Option<Vec<(WireType, &[u8])>> {
    Some(fields(all)?.into_iter().filter(|f| f.0 == number).map(|f| (f.1, f.2)).collect())
}

/// The encoded fields without those of field `number`.
fn without(all: &[u8], number: u32) -> Vec<u8> {
    match fields(all) {
        Some(fields) => fields.into_iter().filter(|f| f.0 != number).flat_map(|f| f.3.iter().copied()).collect(),
        None => all.to_vec(),
    }
}

/// Kept unknown fields were checked when read, so this names a bug, not input.
fn malformed(number: u32) -> DecodeError {
    // prost offers no other constructor for a message of one's own.
    #[allow(deprecated)]
    DecodeError::new(format!("extension field {number} does not parse"))
}

/// One value of a singular or repeated extension.
pub trait Element {
    /// The Rust value.
    type Value: Default;
    /// Whether a list of it may be packed (numbers and enums).
    const PACKABLE: bool;
    /// The wire type of one value, as packed lists hold them.
    const WIRE: WireType;
    /// Merges one occurrence of field `number` into `value`; `buf` holds
    /// the bytes after the field's key.
    fn merge(number: u32, wire: WireType, value: &mut Self::Value, buf: &mut &[u8]) -> Result<(), DecodeError>;
    /// Writes one value as field `number`.
    fn encode(number: u32, value: &Self::Value, buf: &mut Vec<u8>);
    /// Writes values as one packed field `number`.
    fn encode_packed(number: u32, values: &[Self::Value], buf: &mut Vec<u8>);
}

/// Singular extensions: the last occurrence wins (messages merge them all).
impl<E: Element> Codec for E {
    type Value = E::Value;

    fn read(all: &[u8], number: u32) -> Result<Option<E::Value>, DecodeError> {
        let found = occurrences(all, number).ok_or_else(|| malformed(number))?;
        if found.is_empty() {
            return Ok(None);
        }
        let mut value = E::Value::default();
        for (wire, mut bytes) in found {
            E::merge(number, wire, &mut value, &mut bytes)?;
        }
        Ok(Some(value))
    }

    fn write(value: &E::Value, number: u32, buf: &mut Vec<u8>) {
        E::encode(number, value, buf);
    }
}

/// A repeated extension, written one field per element.
#[derive(Debug)]
pub struct Repeated<E>(PhantomData<E>);

/// A repeated extension of numbers or enums, written packed.
#[derive(Debug)]
pub struct Packed<E>(PhantomData<E>);

fn read_list<E: Element>(all: &[u8], number: u32) -> Result<Option<Vec<E::Value>>, DecodeError> {
    let found = occurrences(all, number).ok_or_else(|| malformed(number))?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut values = Vec::new();
    for (wire, mut bytes) in found {
        // Readers accept packed and expanded lists alike.
        if E::PACKABLE && wire == WireType::LengthDelimited {
            let len = prost::encoding::decode_varint(&mut bytes)? as usize;
            let mut packed = bytes.get(..len).ok_or_else(|| malformed(number))?;
            while packed.has_remaining() {
                let mut v = E::Value::default();
                E::merge(number, E::WIRE, &mut v, &mut packed)?;
                values.push(v);
            }
        } else {
            let mut v = E::Value::default();
            E::merge(number, wire, &mut v, &mut bytes)?;
            values.push(v);
        }
    }
    Ok(Some(values))
}

impl<E: Element> Codec for Repeated<E> {
    type Value = Vec<E::Value>;

    fn read(all: &[u8], number: u32) -> Result<Option<Self::Value>, DecodeError> {
        read_list::<E>(all, number)
    }

    fn write(values: &Self::Value, number: u32, buf: &mut Vec<u8>) {
        for v in values {
            E::encode(number, v, buf);
        }
    }
}

impl<E: Element> Codec for Packed<E> {
    type Value = Vec<E::Value>;

    fn read(all: &[u8], number: u32) -> Result<Option<Self::Value>, DecodeError> {
        read_list::<E>(all, number)
    }

    fn write(values: &Self::Value, number: u32, buf: &mut Vec<u8>) {
        if !values.is_empty() {
            E::encode_packed(number, values, buf);
        }
    }
}

macro_rules! scalars {
    ($($(#[$doc:meta])* $name:ident($module:ident, $ty:ty, $packable:tt, $wire:ident);)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl Element for $name {
            type Value = $ty;
            const PACKABLE: bool = $packable;
            const WIRE: WireType = WireType::$wire;

            fn merge(_: u32, wire: WireType, value: &mut $ty, buf: &mut &[u8]) -> Result<(), DecodeError> {
                prost::encoding::$module::merge(wire, value, buf, DecodeContext::default())
            }

            fn encode(number: u32, value: &$ty, buf: &mut Vec<u8>) {
                prost::encoding::$module::encode(number, value, buf);
            }

            fn encode_packed(number: u32, values: &[$ty], buf: &mut Vec<u8>) {
                scalars!(@packed $module, $packable, number, values, buf);
            }
        }
    )*};
    (@packed $module:ident, true, $number:ident, $values:ident, $buf:ident) => {
        prost::encoding::$module::encode_packed($number, $values, $buf)
    };
    (@packed $module:ident, false, $number:ident, $values:ident, $buf:ident) => {
        prost::encoding::$module::encode_repeated($number, $values, $buf)
    };
}

scalars! {
    /// `double`.
    Double(double, f64, true, SixtyFourBit);
    /// `float`.
    Float(float, f32, true, ThirtyTwoBit);
    /// `int32`.
    Int32(int32, i32, true, Varint);
    /// `int64`.
    Int64(int64, i64, true, Varint);
    /// `uint32`.
    Uint32(uint32, u32, true, Varint);
    /// `uint64`.
    Uint64(uint64, u64, true, Varint);
    /// `sint32`.
    Sint32(sint32, i32, true, Varint);
    /// `sint64`.
    Sint64(sint64, i64, true, Varint);
    /// `fixed32`.
    Fixed32(fixed32, u32, true, ThirtyTwoBit);
    /// `fixed64`.
    Fixed64(fixed64, u64, true, SixtyFourBit);
    /// `sfixed32`.
    Sfixed32(sfixed32, i32, true, ThirtyTwoBit);
    /// `sfixed64`.
    Sfixed64(sfixed64, i64, true, SixtyFourBit);
    /// `bool`.
    Bool(bool, bool, true, Varint);
    /// `string` (not `String`, which would make rustc spell out
    /// `std::string::String` in every user's error messages).
    Str(string, std::string::String, false, LengthDelimited);
    /// `bytes`.
    Bytes(bytes, Vec<u8>, false, LengthDelimited);
}

/// An enum `E`, kept as [`EnumValue`] so that unknown numbers survive.
#[derive(Debug)]
pub struct Enum<E>(PhantomData<E>);

impl<E> Element for Enum<E> {
    type Value = EnumValue<E>;
    const PACKABLE: bool = true;
    const WIRE: WireType = WireType::Varint;

    fn merge(_: u32, wire: WireType, value: &mut EnumValue<E>, buf: &mut &[u8]) -> Result<(), DecodeError> {
        let mut n = value.value();
        prost::encoding::int32::merge(wire, &mut n, buf, DecodeContext::default())?;
        *value = EnumValue::new(n);
        Ok(())
    }

    fn encode(number: u32, value: &EnumValue<E>, buf: &mut Vec<u8>) {
        prost::encoding::int32::encode(number, &value.value(), buf);
    }

    fn encode_packed(number: u32, values: &[EnumValue<E>], buf: &mut Vec<u8>) {
        let numbers: Vec<i32> = values.iter().map(|v| v.value()).collect();
        prost::encoding::int32::encode_packed(number, &numbers, buf);
    }
}

/// A message `T` (length-prefixed).
#[derive(Debug)]
pub struct Message<T>(PhantomData<T>);

impl<T: Persistent> Element for Message<T> {
    type Value = T;
    const PACKABLE: bool = false;
    const WIRE: WireType = WireType::LengthDelimited;

    fn merge(_: u32, wire: WireType, value: &mut T, buf: &mut &[u8]) -> Result<(), DecodeError> {
        prost::encoding::message::merge(wire, value, buf, DecodeContext::default())
    }

    fn encode(number: u32, value: &T, buf: &mut Vec<u8>) {
        prost::encoding::message::encode(number, value, buf);
    }

    fn encode_packed(number: u32, values: &[T], buf: &mut Vec<u8>) {
        prost::encoding::message::encode_repeated(number, values, buf);
    }
}

/// A message `T` written as a group (proto2 groups, editions' delimited encoding).
#[derive(Debug)]
pub struct Group<T>(PhantomData<T>);

impl<T: Persistent> Element for Group<T> {
    type Value = T;
    const PACKABLE: bool = false;
    const WIRE: WireType = WireType::StartGroup;

    fn merge(number: u32, wire: WireType, value: &mut T, buf: &mut &[u8]) -> Result<(), DecodeError> {
        prost::encoding::group::merge(number, wire, value, buf, DecodeContext::default())
    }

    fn encode(number: u32, value: &T, buf: &mut Vec<u8>) {
        prost::encoding::group::encode(number, value, buf);
    }

    fn encode_packed(number: u32, values: &[T], buf: &mut Vec<u8>) {
        prost::encoding::group::encode_repeated(number, values, buf);
    }
}
