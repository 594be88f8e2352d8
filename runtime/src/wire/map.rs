//! Map fields as Google's runtimes write them: every entry carries its key
//! and its value, defaults included. prost leaves default keys and values
//! out; both forms read the same, but only this one gives Google's bytes.

use bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use std::collections::BTreeMap;

/// Writes each entry of `values` as field `tag`: key as field 1, value as field 2.
#[inline]
pub fn encode<K, V, B, KE, KL, VE, VL>(
    key_encode: KE,
    key_encoded_len: KL,
    val_encode: VE,
    val_encoded_len: VL,
    tag: u32,
    values: &BTreeMap<K, V>,
    buf: &mut B,
) where
    B: BufMut,
    KE: Fn(u32, &K, &mut B),
    KL: Fn(u32, &K) -> usize,
    VE: Fn(u32, &V, &mut B),
    VL: Fn(u32, &V) -> usize,
{
    for (key, val) in values {
        let len = key_encoded_len(1, key) + val_encoded_len(2, val);
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(len as u64, buf);
        key_encode(1, key, buf);
        val_encode(2, val, buf);
    }
}

/// The length [`encode`] writes.
#[inline]
pub fn encoded_len<K, V, KL, VL>(key_encoded_len: KL, val_encoded_len: VL, tag: u32, values: &BTreeMap<K, V>) -> usize
where
    KL: Fn(u32, &K) -> usize,
    VL: Fn(u32, &V) -> usize,
{
    values
        .iter()
        .map(|(key, val)| {
            let len = key_encoded_len(1, key) + val_encoded_len(2, val);
            key_len(tag) + encoded_len_varint(len as u64) + len
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use prost::encoding::{int32, string};
    use std::collections::BTreeMap;

    #[test]
    fn default_keys_and_values_are_written() {
        let map = BTreeMap::from([(0, String::new()), (1, "a".to_owned())]);
        let mut buf = Vec::new();
        super::encode(int32::encode, int32::encoded_len, string::encode, string::encoded_len, 5, &map, &mut buf);
        assert_eq!(buf, [0x2a, 4, 0x08, 0, 0x12, 0, 0x2a, 5, 0x08, 1, 0x12, 1, b'a']);
        assert_eq!(super::encoded_len(int32::encoded_len, string::encoded_len, 5, &map), buf.len());
    }
}
