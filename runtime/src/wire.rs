//! Encoding helpers that generated code calls. Not a stable API.
#![doc(hidden)]

pub mod map;
pub mod scalar;

use crate::Meta;
use bytes::{Buf, BufMut};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType, decode_key, encode_key, encode_varint};

/// Keeps a field this program does not know, byte for byte, so that saving the
/// message writes it back. Fields of nested messages come here one by one;
/// [`merge_message`] keeps a top-level message's in runs.
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
        skip(wire_type, tag, &mut probe, ctx)?;
        let consumed = chunk.len() - probe.len();
        let mut key = [0u8; 5];
        let written = {
            let mut out = &mut key[..];
            encode_key(tag, wire_type, &mut out);
            5 - out.len()
        };
        // Room for this field only: the input's rest is not this (nested)
        // message's, so it says nothing of how many more fields follow, and
        // an object in the cache keeps what is reserved here.
        meta.append_unknown(&key[..written], written + consumed);
        meta.append_unknown(&chunk[..consumed], 0);
        buf.advance(consumed);
        return Ok(());
    }
    let mut field = Vec::new();
    encode_key(tag, wire_type, &mut field);
    match wire_type {
        WireType::Varint => {
            let mut v = 0u64;
            uint64::merge(wire_type, &mut v, buf, ctx)?;
            encode_varint(v, &mut field);
        }
        WireType::ThirtyTwoBit => {
            let mut v = 0u32;
            fixed32::merge(wire_type, &mut v, buf, ctx)?;
            field.put_u32_le(v);
        }
        WireType::SixtyFourBit => {
            let mut v = 0u64;
            fixed64::merge(wire_type, &mut v, buf, ctx)?;
            field.put_u64_le(v);
        }
        WireType::LengthDelimited => {
            let mut v: Vec<u8> = Vec::new();
            pbytes::merge(wire_type, &mut v, buf, ctx)?;
            encode_varint(v.len() as u64, &mut field);
            field.extend_from_slice(&v);
        }
        WireType::StartGroup => {
            // prost checks the end tag and the nesting limit while the group is read.
            let mut g = RawGroup::default();
            group::merge(tag, wire_type, &mut g, buf, ctx)?;
            field.extend_from_slice(g.0.unknown_fields());
            encode_key(tag, WireType::EndGroup, &mut field);
        }
        WireType::EndGroup => {
            // An end without a start is malformed; prost reports it.
            return prost::encoding::skip_field(wire_type, tag, buf, ctx);
        }
    }
    meta.append_unknown(&field, 0);
    Ok(())
}

/// Decodes a whole message: what `Message::merge` runs for generated types.
///
/// Consecutive unknown fields are kept as one run, copied once. `read` reads
/// one of the message's known fields, or returns `Ok(false)` for any other
/// number.
#[inline]
pub fn merge_message<M: crate::Persistent>(
    msg: &mut M,
    mut buf: impl Buf,
    read: impl Fn(&mut M, u32, WireType, &mut &[u8], DecodeContext) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let total = buf.remaining();
    if buf.chunk().len() != total {
        // Input in pieces (rare): made contiguous once.
        let whole = buf.copy_to_bytes(total);
        return merge_message(msg, whole, read);
    }
    let chunk = buf.chunk();
    if let Some(r) = scan(msg, chunk, read)? {
        msg.meta_mut().append_unknown(&chunk[r], 0);
    }
    buf.advance(total);
    Ok(())
}

/// Reads a field's key. Keys of field numbers 1 to 15 are one byte, read here
/// without a call; the rest, and every malformed key, go to prost.
#[inline(always)]
fn key(rest: &mut &[u8]) -> Result<(u32, WireType), DecodeError> {
    // A key byte below 0x80 is the whole key; below 8 its field number is 0.
    if let Some(&byte) = rest.first()
        && (8..0x80).contains(&byte)
    {
        let wire_type = match byte & 7 {
            0 => Some(WireType::Varint),
            1 => Some(WireType::SixtyFourBit),
            2 => Some(WireType::LengthDelimited),
            3 => Some(WireType::StartGroup),
            4 => Some(WireType::EndGroup),
            5 => Some(WireType::ThirtyTwoBit),
            _ => None,
        };
        if let Some(wire_type) = wire_type {
            *rest = &rest[1..];
            return Ok((u32::from(byte >> 3), wire_type));
        }
    }
    decode_key(rest)
}

/// Skips a field's value. The common well-formed cases are handled here
/// without a call: a varint, a fixed-size value, a length-delimited value
/// whose length is one byte. Everything else, groups and malformed values
/// included, goes to prost, so what is accepted and what is refused is
/// exactly prost's.
#[inline(always)]
fn skip(wire_type: WireType, tag: u32, rest: &mut &[u8], ctx: DecodeContext) -> Result<(), DecodeError> {
    let len = match wire_type {
        // A tenth byte may only hold the top bit of 64 (negative numbers).
        WireType::Varint => match rest.iter().take(10).position(|b| b & 0x80 == 0) {
            Some(9) if rest[9] > 1 => None,
            end => end.map(|i| i + 1),
        },
        WireType::ThirtyTwoBit => Some(4),
        WireType::SixtyFourBit => Some(8),
        WireType::LengthDelimited => rest.first().filter(|b| **b < 0x80).map(|b| 1 + usize::from(*b)),
        WireType::StartGroup | WireType::EndGroup => None,
    };
    match len.and_then(|n| rest.get(n..)) {
        Some(after) => {
            *rest = after;
            Ok(())
        }
        None => prost::encoding::skip_field(wire_type, tag, rest, ctx),
    }
}

/// Reads the fields of `input` into `msg`. Known fields are read from the
/// slice; unknown runs before the last are copied into `msg`, and the last
/// is returned as a range of `input`. Inlined into `merge_message`, with the
/// field reader inlined in turn, so that reading a field costs one dispatch on
/// its number and no call (callgrind: 14% fewer instructions per `Tower`
/// decode, 7% for every scalar).
#[inline(always)]
fn scan<M: crate::Persistent>(
    msg: &mut M,
    input: &[u8],
    read: impl Fn(&mut M, u32, WireType, &mut &[u8], DecodeContext) -> Result<bool, DecodeError>,
) -> Result<Option<std::ops::Range<usize>>, DecodeError> {
    let ctx = DecodeContext::default();
    let total = input.len();
    let mut rest = input;
    let mut run: Option<std::ops::Range<usize>> = None;
    while !rest.is_empty() {
        let start = total - rest.len();
        let (tag, wire_type) = key(&mut rest)?;
        // A known field can add unknown fields too (a closed enum's unknown
        // number); those go after the run pending before it.
        let before = run.as_ref().map(|_| msg.meta().unknown_fields().len());
        if read(msg, tag, wire_type, &mut rest, ctx.clone())? {
            if let (Some(r), Some(before)) = (&run, before)
                && msg.meta().unknown_fields().len() != before
            {
                msg.meta_mut().insert_unknown(before, &input[r.clone()]);
                run = None;
            }
            continue;
        }
        skip(wire_type, tag, &mut rest, ctx.clone())?;
        let end = total - rest.len();
        match &mut run {
            Some(r) if r.end == start => r.end = end,
            _ => {
                if let Some(r) = run.replace(start..end) {
                    msg.meta_mut().append_unknown(&input[r], 0);
                }
            }
        }
    }
    Ok(run)
}

thread_local! {
    /// The nesting limit of the decode running on this thread, and the depth reached.
    static DEPTH: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((u32::MAX, 0)) };
}

/// Decodes one nested message level, failing past the configured depth.
/// prost's own fixed limit stays in force beneath this one.
#[inline(always)]
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

/// Wire functions for message fields: prost's, except that encoding writes
/// the length that the `encoded_len` before it remembered, so that encoding
/// a tree of messages walks it twice, not once per level.
pub mod message {
    use crate::Persistent;
    use bytes::BufMut;
    use prost::encoding::WireType;
    pub use prost::encoding::message::{encoded_len, encoded_len_repeated, merge, merge_repeated};

    /// Writes one message field. The caller's `encoded_len` must have run
    /// since the message last changed, as prost requires of `encode_raw`.
    #[inline]
    pub fn encode<M: Persistent>(tag: u32, msg: &M, buf: &mut impl BufMut) {
        super::scalar::key(tag, WireType::LengthDelimited, buf);
        let len = msg.meta().remembered_len().unwrap_or_else(|| msg.encoded_len());
        super::scalar::varint(len as u64, buf);
        msg.encode_raw(buf);
    }

    /// Writes a message field per element.
    #[inline]
    pub fn encode_repeated<M: Persistent>(tag: u32, msgs: &[M], buf: &mut impl BufMut) {
        for msg in msgs {
            encode(tag, msg, buf);
        }
    }
}

/// Wire functions for enum fields stored as [`EnumValue`](crate::EnumValue):
/// the same bytes as `int32`.
pub mod enumeration {
    use crate::EnumValue;
    use bytes::{Buf, BufMut};
    use prost::DecodeError;
    use prost::encoding::{
        DecodeContext, WireType, check_wire_type, encode_key, encode_varint, encoded_len_varint, int32, key_len,
    };

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
        each_number(wire_type, buf, ctx, |v| {
            if E::CLOSED && E::from_i32(v).is_none() {
                keep_unknown(meta, tag, v);
            } else {
                values.push(EnumValue::new(v));
            }
        })
    }

    /// Calls `each` for every number of a packed or unpacked field, with no
    /// buffer in between.
    #[inline]
    fn each_number(
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
        mut each: impl FnMut(i32),
    ) -> Result<(), DecodeError> {
        let mut one = |buf: &mut _, ctx| {
            let mut v = 0i32;
            int32::merge(WireType::Varint, &mut v, buf, ctx)?;
            each(v);
            Ok(())
        };
        if wire_type == WireType::LengthDelimited {
            prost::encoding::merge_loop(&mut (), buf, ctx, |(), buf, ctx| one(buf, ctx))
        } else {
            check_wire_type(WireType::Varint, wire_type)?;
            one(buf, ctx)
        }
    }

    fn keep_unknown(meta: &mut crate::Meta, tag: u32, v: i32) {
        // A key (at most 5 bytes) and a negative number's 10-byte varint.
        let mut field = [0u8; 15];
        let written = {
            let mut out = &mut field[..];
            prost::encoding::encode_key(tag, WireType::Varint, &mut out);
            prost::encoding::encode_varint(v as i64 as u64, &mut out);
            15 - out.len()
        };
        meta.append_unknown(&field[..written], 0);
    }

    /// Writes one value.
    #[inline]
    pub fn encode<E>(tag: u32, value: &EnumValue<E>, buf: &mut impl BufMut) {
        super::scalar::int32::encode(tag, &value.value(), buf)
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

    /// The length of the packed values' body.
    fn packed_body_len<E>(values: &[EnumValue<E>]) -> usize {
        values.iter().map(|v| encoded_len_varint(v.value() as i64 as u64)).sum()
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
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(packed_body_len(values) as u64, buf);
            for v in values {
                encode_varint(v.value() as i64 as u64, buf);
            }
        }
    }

    /// Reads packed or unpacked values, whatever the declaration says.
    pub fn merge_repeated<E>(
        wire_type: WireType,
        values: &mut Vec<EnumValue<E>>,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        each_number(wire_type, buf, ctx, |v| values.push(EnumValue::new(v)))
    }

    /// The encoded length of unpacked values.
    pub fn encoded_len_repeated<E>(tag: u32, values: &[EnumValue<E>]) -> usize {
        values.iter().map(|v| encoded_len(tag, v)).sum()
    }

    /// The encoded length of packed values.
    pub fn encoded_len_packed<E>(tag: u32, values: &[EnumValue<E>]) -> usize {
        if values.is_empty() {
            0
        } else {
            let body = packed_body_len(values);
            key_len(tag) + encoded_len_varint(body as u64) + body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_keys_read_as_prost_reads_them() {
        for first in 0..=255u8 {
            for next in [0u8, 1, 0x7f, 0x80] {
                let bytes = [first, next, 0];
                let (mut ours, mut theirs) = (&bytes[..], &bytes[..]);
                let (a, b) = (key(&mut ours), decode_key(&mut theirs));
                match (a, b) {
                    (Ok(a), Ok(b)) => assert_eq!((a, ours.len()), (b, theirs.len()), "key {first:#x} {next:#x}"),
                    (Err(_), Err(_)) => {}
                    (a, b) => panic!("key {first:#x} {next:#x}: {a:?} against prost's {b:?}"),
                }
            }
        }
    }

    #[test]
    fn long_varints_skip_as_prost_skips_them() {
        for last in 0..=255u8 {
            for len in 1..=11 {
                let mut bytes = vec![0xff; len - 1];
                bytes.extend([last, 0]);
                let (mut ours, mut theirs) = (&bytes[..], &bytes[..]);
                let a = skip(WireType::Varint, 1, &mut ours, DecodeContext::default());
                let b = prost::encoding::skip_field(WireType::Varint, 1, &mut theirs, DecodeContext::default());
                assert_eq!((a.is_ok(), ours.len()), (b.is_ok(), theirs.len()), "{len} bytes ending {last:#x}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn skips_as_prost_skips(wire in 0u8..6, bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..140), short in 0usize..12) {
            // Short prefixes of the bytes are the truncated values; bytes with
            // the high bit set make long and overlong varints.
            let wire_type = WireType::try_from(u64::from(wire)).unwrap();
            let bytes = &bytes[..bytes.len().saturating_sub(short)];
            let (mut ours, mut theirs) = (bytes, bytes);
            let a = skip(wire_type, 1, &mut ours, DecodeContext::default());
            let b = prost::encoding::skip_field(wire_type, 1, &mut theirs, DecodeContext::default());
            proptest::prop_assert_eq!(a.is_ok(), b.is_ok());
            proptest::prop_assert_eq!(ours.len(), theirs.len());
        }
    }
}
