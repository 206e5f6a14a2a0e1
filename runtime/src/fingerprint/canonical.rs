//! The canonical JSON serializer of section keys: a serde `Serializer` that writes straight
//! into the key's hasher (or into the buffer of one object, whose entries are sorted before
//! they are written). Object keys sorted by their encoded bytes, no white space, `NaN`,
//! `Infinity` and `-Infinity` as bare words, and `?` before the `null` of a `Some` per level.

use std::io::Write;

use serde::Serialize;
use serde::ser::{self, Error as _};
use sha2::{Digest, Sha256};

/// Where canonical bytes go: the hasher, or a buffer of one object's entries.
pub(super) trait Out {
    fn put(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The key's hasher, fed through a small buffer: canonical JSON comes in many pieces of a
/// few bytes, and one SHA-256 update per piece would cost more than the hashing itself.
pub(super) struct HashOut {
    hasher: Sha256,
    buf: [u8; 256],
    len: usize,
    /// Bytes put since the last [`suffixed`](Self::suffixed) began.
    written: u64,
}

impl Default for HashOut {
    fn default() -> Self {
        HashOut::new(Sha256::new())
    }
}

impl HashOut {
    /// Goes on from `hasher`'s state.
    pub(super) fn new(hasher: Sha256) -> Self {
        HashOut {
            hasher,
            buf: [0; 256],
            len: 0,
            written: 0,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
        }
        if bytes.len() > self.buf.len() {
            self.hasher.update(bytes);
        } else {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// A field with its length in front.
    pub(super) fn field(&mut self, bytes: &[u8]) {
        self.update(&(bytes.len() as u64).to_be_bytes());
        self.update(bytes);
    }

    /// Canonical JSON of `value` with its length behind.
    pub(super) fn suffixed<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        self.written = 0;
        value.serialize(&mut Canonical::new(&mut *self))?;
        let written = self.written;
        self.update(&written.to_be_bytes());
        Ok(())
    }

    /// The hasher, with everything put so far.
    pub(super) fn into_hasher(mut self) -> Sha256 {
        self.hasher.update(&self.buf[..self.len]);
        self.hasher
    }
}

impl Out for HashOut {
    fn put(&mut self, bytes: &[u8]) {
        self.written += bytes.len() as u64;
        self.update(bytes);
    }
}

/// `io::Write` over an [`Out`], for serde_json's string and float formatting.
struct WriteOut<'o, O: Out>(&'o mut O);

impl<O: Out> Write for WriteOut<'_, O> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.put(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The canonical JSON serializer.
pub(super) struct Canonical<'o, O: Out> {
    out: &'o mut O,
    /// `Some`s entered whose content has not been written yet.
    somes: usize,
}

impl<'o, O: Out> Canonical<'o, O> {
    pub(super) fn new(out: &'o mut O) -> Self {
        Canonical { out, somes: 0 }
    }

    /// Any value but `null` makes the pending `Some`s invisible, as in JSON.
    fn value(&mut self) {
        self.somes = 0;
    }

    /// `null`, after a `?` per pending `Some`: `Some(None)` is not `None`.
    fn null(&mut self) {
        for _ in 0..std::mem::take(&mut self.somes) {
            self.out.put(b"?");
        }
        self.out.put(b"null");
    }

    /// An integer, in decimal (serde_json's fast formatting).
    fn integer<T: Serialize>(&mut self, value: T) -> serde_json::Result<()> {
        self.value();
        serde_json::to_writer(WriteOut(&mut *self.out), &value)
    }

    fn float(&mut self, value: f64, as_f32: Option<f32>) -> serde_json::Result<()> {
        self.value();
        if value.is_nan() {
            self.out.put(b"NaN");
        } else if value == f64::INFINITY {
            self.out.put(b"Infinity");
        } else if value == f64::NEG_INFINITY {
            self.out.put(b"-Infinity");
        } else {
            match as_f32 {
                Some(v) => serde_json::to_writer(WriteOut(&mut *self.out), &v)?,
                None => serde_json::to_writer(WriteOut(&mut *self.out), &value)?,
            }
        }
        Ok(())
    }

    fn string(&mut self, value: &str) -> serde_json::Result<()> {
        self.value();
        serde_json::to_writer(WriteOut(&mut *self.out), value)
    }

    /// `{"variant":` before the content of a newtype, tuple or struct variant.
    fn open_variant(&mut self, variant: &str) -> serde_json::Result<()> {
        self.value();
        self.out.put(b"{");
        self.string(variant)?;
        self.out.put(b":");
        Ok(())
    }
}

type Error = serde_json::Error;

impl<'a, 'o, O: Out> ser::Serializer for &'a mut Canonical<'o, O> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a, 'o, O>;
    type SerializeTuple = Seq<'a, 'o, O>;
    type SerializeTupleStruct = Seq<'a, 'o, O>;
    type SerializeTupleVariant = Seq<'a, 'o, O>;
    type SerializeMap = Object<'a, 'o, O>;
    type SerializeStruct = Object<'a, 'o, O>;
    type SerializeStructVariant = Object<'a, 'o, O>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.value();
        self.out.put(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.integer(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(f64::from(v), Some(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v, None)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.value();
        self.out.put(b"[");
        for (i, byte) in v.iter().enumerate() {
            if i > 0 {
                self.out.put(b",");
            }
            self.integer(*byte)?;
        }
        self.out.put(b"]");
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.null();
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.somes += 1;
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.null();
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.null();
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.out.put(b"}");
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        self.value();
        self.out.put(b"[");
        Ok(Seq {
            ser: self,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        self.open_variant(variant)?;
        self.out.put(b"[");
        Ok(Seq {
            ser: self,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        self.value();
        Ok(Object::new(self, false))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        self.value();
        Ok(Object::new(self, false))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        self.open_variant(variant)?;
        Ok(Object::new(self, true))
    }
}

/// A sequence, written as it comes.
pub(super) struct Seq<'a, 'o, O: Out> {
    ser: &'a mut Canonical<'o, O>,
    first: bool,
    /// Inside `{"variant":...}`: close that too.
    variant: bool,
}

impl<O: Out> Seq<'_, '_, O> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.ser.out.put(b",");
        }
        self.first = false;
        value.serialize(&mut *self.ser)
    }
    fn close(self) -> Result<(), Error> {
        self.ser.out.put(if self.variant { b"]}" } else { b"]" });
        Ok(())
    }
}

impl<O: Out> ser::SerializeSeq for Seq<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<O: Out> ser::SerializeTuple for Seq<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<O: Out> ser::SerializeTupleStruct for Seq<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<O: Out> ser::SerializeTupleVariant for Seq<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A map or struct: its entries are buffered, then written sorted by their encoded keys.
pub(super) struct Object<'a, 'o, O: Out> {
    ser: &'a mut Canonical<'o, O>,
    buf: Vec<u8>,
    /// Each entry: where its key starts, where its value starts, where it ends.
    entries: Vec<(usize, usize, usize)>,
    /// Inside `{"variant":...}`: close that too.
    variant: bool,
}

impl<'a, 'o, O: Out> Object<'a, 'o, O> {
    fn new(ser: &'a mut Canonical<'o, O>, variant: bool) -> Self {
        Object {
            ser,
            buf: Vec::new(),
            entries: Vec::new(),
            variant,
        }
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let start = self.buf.len();
        key.serialize(&mut Canonical::new(&mut self.buf))?;
        if self.buf.get(start) != Some(&b'"') {
            // A number, `true`, `null`...: as a JSON string, like serde_json's map keys.
            let text = String::from_utf8_lossy(&self.buf[start..]).into_owned();
            self.buf.truncate(start);
            serde_json::to_writer(&mut self.buf, &text)?;
        }
        self.entries.push((start, self.buf.len(), self.buf.len()));
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut Canonical::new(&mut self.buf))?;
        match self.entries.last_mut() {
            Some(entry) => {
                entry.2 = self.buf.len();
                Ok(())
            }
            None => Err(Error::custom("map value without a key")),
        }
    }

    fn close(mut self) -> Result<(), Error> {
        let buf = &self.buf;
        self.entries
            .sort_by(|a, b| buf[a.0..a.1].cmp(&buf[b.0..b.1]));
        let out = &mut *self.ser.out;
        out.put(b"{");
        for (i, &(key, value, end)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.put(b",");
            }
            out.put(&buf[key..value]);
            out.put(b":");
            out.put(&buf[value..end]);
        }
        out.put(if self.variant { b"}}" } else { b"}" });
        Ok(())
    }
}

impl<O: Out> ser::SerializeMap for Object<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<O: Out> ser::SerializeStruct for Object<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.key(key)?;
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<O: Out> ser::SerializeStructVariant for Object<'_, '_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.key(key)?;
        self.value(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}
