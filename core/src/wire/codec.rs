//! Postcard-compatible primitives: a bounds-checked [`Reader`] and the [`Encode`] / [`Decode`]
//! traits every wire type implements.
//!
//! Sheaf encodes its wire types by hand instead of through serde so that decoding is total and its
//! errors are precise: a short record identifier, an unknown enum tag or a truncated buffer each
//! give their own [`DecodeError`], and no length read from the wire ever drives an allocation
//! larger than the bytes that are actually present. The byte format is postcard 1.x (varint
//! integers, enum tag as varint, fixed arrays raw, byte strings and sequences length-prefixed), so
//! the bytes are identical to what iroh-docs produces with serde + postcard; `sheaf-tests`'
//! `wire_compat` suite checks that against the real crate.

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A varint was longer than its type allows or overflowed it.
    #[error("malformed varint")]
    BadVarint,
    /// An enum tag that the type does not have.
    #[error("unknown variant {tag} for {ty}")]
    UnknownVariant {
        /// The type being decoded.
        ty: &'static str,
        /// The tag read from the wire.
        tag: u32,
    },
    /// A boolean byte other than 0 or 1.
    #[error("invalid bool byte {0}")]
    BadBool(u8),
    /// An option tag other than 0 or 1.
    #[error("invalid option tag {0}")]
    BadOption(u8),
    /// A value decoded completely but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A record identifier shorter than namespace (32) + author (32) bytes.
    #[error("record identifier of {0} bytes, at least 64 required")]
    ShortRecordId(usize),
    /// 32 bytes that must be an ed25519 public key are not a valid curve point.
    #[error("invalid ed25519 public key for {0}")]
    InvalidPublicKey(&'static str),
    /// A string that is not UTF-8.
    #[error("invalid utf-8 string")]
    InvalidUtf8,
    /// A value that is syntactically valid but semantically not allowed.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// A type with a postcard-compatible byte encoding.
pub trait Encode {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The encoding as a fresh vector.
    fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A type that can be decoded from its postcard-compatible encoding.
pub trait Decode: Sized {
    /// Reads one value from `r`, advancing it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must span all of `bytes` (trailing bytes are an error).
    fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// A cursor over a byte slice that never reads past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Errors with [`DecodeError::TrailingBytes`] unless everything was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::UnexpectedEnd);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Takes one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a varint of at most `bits` bits (postcard rules: at most ceil(bits/7) bytes, no
    /// overflow of the target width; non-minimal encodings are accepted like postcard does).
    fn varint(&mut self, bits: u32) -> Result<u64, DecodeError> {
        let max_bytes = bits.div_ceil(7);
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let byte = self.u8()?;
            let shift = 7 * i;
            let part = u64::from(byte & 0x7f);
            if i == max_bytes - 1 {
                let room = bits - shift;
                if room < 7 && part >> room != 0 {
                    return Err(DecodeError::BadVarint);
                }
            }
            value |= part << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// Reads a `u64` varint.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.varint(64)
    }

    /// Reads a `u32` varint (used for enum tags).
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(self.varint(32)? as u32)
    }

    /// Reads a `u16` varint.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(self.varint(16)? as u16)
    }

    /// Reads a length prefix (postcard `usize`, 64-bit) and checks it against what is left.
    ///
    /// `min_item_len` is the smallest encoding one element can have; a count that could not
    /// possibly fit in the remaining bytes is rejected before anything is allocated.
    pub fn len_prefix(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        let fits = n
            .checked_mul(min_item_len.max(1) as u64)
            .is_some_and(|need| need <= self.remaining() as u64);
        if !fits {
            return Err(DecodeError::UnexpectedEnd);
        }
        Ok(n as usize)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len_prefix(1)?;
        self.take(n)
    }

    /// Reads a postcard `bool`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::BadBool(b)),
        }
    }

    /// Reads a sequence of `T` whose elements each take at least `min_item_len` bytes.
    pub fn seq<T: Decode>(&mut self, min_item_len: usize) -> Result<Vec<T>, DecodeError> {
        let n = self.len_prefix(min_item_len)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }
}

/// Appends a `u64` varint.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Number of bytes [`put_u64`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a sequence: length prefix, then each element.
pub fn put_seq<T: Encode>(out: &mut Vec<u8>, items: &[T]) {
    put_u64(out, items.len() as u64);
    for item in items {
        item.encode(out);
    }
}

impl Encode for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, *self);
    }
}

impl Decode for u64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_postcard() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(out, postcard::to_stdvec(&v).unwrap(), "{v}");
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(Reader::new(&out).u64().unwrap(), v);
        }
    }

    #[test]
    fn varint_overflow_is_an_error() {
        // 10 bytes whose last one sets bits beyond 64.
        let mut bad = vec![0xff; 9];
        bad.push(0x02);
        assert_eq!(Reader::new(&bad).u64(), Err(DecodeError::BadVarint));
        // 11 continuation bytes.
        assert_eq!(Reader::new(&[0x80; 11]).u64(), Err(DecodeError::BadVarint));
        // u32 with a fifth byte above 0x0f.
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x10]).u32(),
            Err(DecodeError::BadVarint)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).u32(),
            Ok(u32::MAX)
        );
        assert_eq!(Reader::new(&[0x80]).u64(), Err(DecodeError::UnexpectedEnd));
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        let mut buf = Vec::new();
        put_u64(&mut buf, u64::MAX / 2);
        buf.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            Reader::new(&buf).seq::<u64>(1),
            Err(DecodeError::UnexpectedEnd)
        );
        assert_eq!(Reader::new(&buf).bytes(), Err(DecodeError::UnexpectedEnd));
    }
}
