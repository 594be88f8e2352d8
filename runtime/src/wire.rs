//! Encoding helpers that generated code calls. Not a stable API.
#![doc(hidden)]

use crate::Meta;
use bytes::{Buf, BufMut};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType, encode_key, encode_varint};

/// Keeps a field this program does not know, byte for byte, so that saving the
/// message writes it back.
pub fn merge_unknown(
    meta: &mut Meta,
    tag: u32,
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    use prost::encoding::{bytes as pbytes, fixed32, fixed64, group, uint64};
    // Fast path: when the input is one contiguous slice (always, when loading
    // a record), find the field's end with prost's skipper, which checks
    // lengths, group ends and nesting, and copy its bytes as they are.
    let chunk = buf.chunk();
    if chunk.len() == buf.remaining() {
        let mut probe = chunk;
        prost::encoding::skip_field(wire_type, tag, &mut probe, ctx)?;
        let consumed = chunk.len() - probe.len();
        let out = meta.unknown_mut();
        if out.capacity() == 0 {
            // Usually one allocation for all unknown fields of the message,
            // capped so that a small unknown field in a large message does
            // not keep much memory in the cache.
            out.reserve((chunk.len() + 5).min(1024));
        }
        encode_key(tag, wire_type, out);
        out.extend_from_slice(&chunk[..consumed]);
        buf.advance(consumed);
        return Ok(());
    }
    let out = meta.unknown_mut();
    match wire_type {
        WireType::Varint => {
            let mut v = 0u64;
            uint64::merge(wire_type, &mut v, buf, ctx)?;
            encode_key(tag, wire_type, out);
            encode_varint(v, out);
        }
        WireType::ThirtyTwoBit => {
            let mut v = 0u32;
            fixed32::merge(wire_type, &mut v, buf, ctx)?;
            encode_key(tag, wire_type, out);
            out.put_u32_le(v);
        }
        WireType::SixtyFourBit => {
            let mut v = 0u64;
            fixed64::merge(wire_type, &mut v, buf, ctx)?;
            encode_key(tag, wire_type, out);
            out.put_u64_le(v);
        }
        WireType::LengthDelimited => {
            let mut v: Vec<u8> = Vec::new();
            pbytes::merge(wire_type, &mut v, buf, ctx)?;
            encode_key(tag, wire_type, out);
            encode_varint(v.len() as u64, out);
            out.extend_from_slice(&v);
        }
        WireType::StartGroup => {
            // prost checks the end tag and the nesting limit while the group is read.
            let mut g = RawGroup::default();
            group::merge(tag, wire_type, &mut g, buf, ctx)?;
            encode_key(tag, WireType::StartGroup, out);
            out.extend_from_slice(g.0.unknown_fields());
            encode_key(tag, WireType::EndGroup, out);
        }
        WireType::EndGroup => {
            // An end without a start is malformed; prost reports it.
            prost::encoding::skip_field(wire_type, tag, buf, ctx)?;
        }
    }
    Ok(())
}

thread_local! {
    /// The nesting limit of the decode running on this thread, and the depth reached.
    static DEPTH: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((u32::MAX, 0)) };
}

/// Decodes one nested message level, failing past the configured depth.
/// prost's own fixed limit stays in force beneath this one.
#[inline]
pub fn nested<R>(decode: impl FnOnce() -> Result<R, DecodeError>) -> Result<R, DecodeError> {
    let (limit, depth) = DEPTH.get();
    if depth >= limit {
        return Err(too_deep(limit));
    }
    DEPTH.set((limit, depth + 1));
    let result = decode();
    DEPTH.set((limit, depth));
    result
}

#[cold]
fn too_deep(limit: u32) -> DecodeError {
    // prost has no public constructor for a custom decode error besides this one.
    #[allow(deprecated)]
    DecodeError::new(format!("messages nested deeper than the limit of {limit}"))
}

/// Runs `decode` with at most `limit` levels of nested messages.
pub fn with_depth_limit<R>(limit: u32, decode: impl FnOnce() -> R) -> R {
    let saved = DEPTH.get();
    DEPTH.set((limit, 0));
    let result = decode();
    DEPTH.set(saved);
    result
}

/// Writes the kept unknown fields after the known ones.
#[inline]
pub fn encode_unknown(meta: &Meta, buf: &mut impl BufMut) {
    let unknown = meta.unknown_fields();
    if !unknown.is_empty() {
        buf.put_slice(unknown);
    }
}

/// The fields of an unknown group, kept raw.
#[derive(Default, Debug)]
struct RawGroup(Meta);

impl prost::Message for RawGroup {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encode_unknown(&self.0, buf)
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        merge_unknown(&mut self.0, tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.unknown_fields().len()
    }

    fn clear(&mut self) {
        self.0 = Meta::default();
    }
}

/// Wire functions for enum fields stored as [`EnumValue`](crate::EnumValue):
/// the same bytes as `int32`.
pub mod enumeration {
    use crate::EnumValue;
    use bytes::{Buf, BufMut};
    use prost::DecodeError;
    use prost::encoding::{DecodeContext, WireType, int32};

    /// Reads one value of a field with presence. For a closed enum, a number
    /// it does not list goes to the unknown fields and leaves the field as it was.
    pub fn merge_optional<E: crate::Enumeration>(
        meta: &mut crate::Meta,
        tag: u32,
        wire_type: WireType,
        value: &mut Option<EnumValue<E>>,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut v = 0i32;
        int32::merge(wire_type, &mut v, buf, ctx)?;
        if E::CLOSED && E::from_i32(v).is_none() {
            keep_unknown(meta, tag, v);
        } else {
            *value = Some(EnumValue::new(v));
        }
        Ok(())
    }

    /// Reads packed or unpacked values; for a closed enum, numbers it does not
    /// list go to the unknown fields.
    pub fn merge_repeated_closed<E: crate::Enumeration>(
        meta: &mut crate::Meta,
        tag: u32,
        wire_type: WireType,
        values: &mut Vec<EnumValue<E>>,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut numbers = Vec::new();
        int32::merge_repeated(wire_type, &mut numbers, buf, ctx)?;
        for v in numbers {
            if E::CLOSED && E::from_i32(v).is_none() {
                keep_unknown(meta, tag, v);
            } else {
                values.push(EnumValue::new(v));
            }
        }
        Ok(())
    }

    fn keep_unknown(meta: &mut crate::Meta, tag: u32, v: i32) {
        let out = meta.unknown_mut();
        prost::encoding::encode_key(tag, WireType::Varint, out);
        prost::encoding::encode_varint(v as i64 as u64, out);
    }

    /// Writes one value.
    #[inline]
    pub fn encode<E>(tag: u32, value: &EnumValue<E>, buf: &mut impl BufMut) {
        int32::encode(tag, &value.value(), buf)
    }

    /// Reads one value.
    #[inline]
    pub fn merge<E>(
        wire_type: WireType,
        value: &mut EnumValue<E>,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut v = value.value();
        int32::merge(wire_type, &mut v, buf, ctx)?;
        *value = EnumValue::new(v);
        Ok(())
    }

    /// The encoded length of one value.
    #[inline]
    pub fn encoded_len<E>(tag: u32, value: &EnumValue<E>) -> usize {
        int32::encoded_len(tag, &value.value())
    }

    fn numbers<E>(values: &[EnumValue<E>]) -> Vec<i32> {
        values.iter().map(|v| v.value()).collect()
    }

    /// Writes values one field each.
    pub fn encode_repeated<E>(tag: u32, values: &[EnumValue<E>], buf: &mut impl BufMut) {
        for v in values {
            encode(tag, v, buf);
        }
    }

    /// Writes values packed into one field.
    pub fn encode_packed<E>(tag: u32, values: &[EnumValue<E>], buf: &mut impl BufMut) {
        if !values.is_empty() {
            int32::encode_packed(tag, &numbers(values), buf)
        }
    }

    /// Reads packed or unpacked values, whatever the declaration says.
    pub fn merge_repeated<E>(
        wire_type: WireType,
        values: &mut Vec<EnumValue<E>>,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut numbers = Vec::new();
        int32::merge_repeated(wire_type, &mut numbers, buf, ctx)?;
        values.extend(numbers.into_iter().map(EnumValue::new));
        Ok(())
    }

    /// The encoded length of unpacked values.
    pub fn encoded_len_repeated<E>(tag: u32, values: &[EnumValue<E>]) -> usize {
        values.iter().map(|v| encoded_len(tag, v)).sum()
    }

    /// The encoded length of packed values.
    pub fn encoded_len_packed<E>(tag: u32, values: &[EnumValue<E>]) -> usize {
        if values.is_empty() { 0 } else { int32::encoded_len_packed(tag, &numbers(values)) }
    }
}
