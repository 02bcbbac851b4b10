//! The MessagePack decoding of a received frame, checked in the same pass (spec 3.2, 3.4).
//!
//! The Python codec unpacks a frame with msgpack, then, when the bytes could hold something the
//! spec refuses (a `bin`, `ext` or timestamp byte anywhere, floats included, or more than 512
//! container headers), walks the value again to check it. This decoder builds the same value
//! (`dict`, `list`, `str`, `int`, `float`, `bool`, `None`, `bytes`) and checks it as it goes. On
//! anything it does not build, or anything wrong (an ext type, a key that is not a string, invalid
//! UTF-8, a truncated or over-long frame), and beyond 32 levels of nesting (`MAX_DEPTH`), it
//! declines, and the Python path
//! decodes the frame again and raises the error that says what is wrong.

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use pyo3::IntoPyObjectExt;

use crate::MAX_DEPTH;

/// Why a frame goes to the Python path. Not an error: the Python path decides.
pub(crate) struct Declined;

pub(crate) type Decoded<'py> = Result<Bound<'py, PyAny>, Declined>;

/// Keys remembered by their place in a map: the maps of an array of records mostly have the same
/// keys in the same order, and a key found here is neither decoded nor hashed again.
const KEY_PLACES: usize = 8;

pub(crate) struct Reader<'a, 'py> {
    data: &'a [u8],
    pos: usize,
    keys: [Option<(&'a [u8], Bound<'py, PyString>)>; KEY_PLACES],
}

impl<'a, 'py> Reader<'a, 'py> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            keys: Default::default(),
        }
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Declined> {
        let end = self.pos.checked_add(n).ok_or(Declined)?;
        let bytes = self.data.get(self.pos..end).ok_or(Declined)?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, Declined> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, size: usize) -> Result<u64, Declined> {
        Ok(self
            .take(size)?
            .iter()
            .fold(0, |n, &b| n << 8 | u64::from(b)))
    }

    /// A declared count of items, each at least one byte: more than the bytes left is a lie that
    /// must not make us reserve memory.
    fn count(&mut self, size: usize) -> Result<usize, Declined> {
        let n = self.uint(size)? as usize;
        if n > self.data.len() - self.pos {
            return Err(Declined);
        }
        Ok(n)
    }

    pub(crate) fn value(&mut self, py: Python<'py>, depth: usize) -> Decoded<'py> {
        let c = self.byte()?;
        match c {
            0x00..=0x7f => object(py, c),
            0xe0..=0xff => object(py, c as i8),
            0xa0..=0xbf => self.str(py, usize::from(c & 0x1f)),
            0x90..=0x9f => self.array(py, usize::from(c & 0x0f), depth),
            0x80..=0x8f => self.map(py, usize::from(c & 0x0f), depth),
            0xc0 => Ok(py.None().into_bound(py)),
            0xc2 => object(py, false),
            0xc3 => object(py, true),
            0xc4..=0xc6 => {
                let n = self.uint(1 << (c - 0xc4))? as usize;
                Ok(PyBytes::new(py, self.take(n)?).into_any())
            }
            0xca => {
                let bits = self.uint(4)? as u32;
                object(py, f64::from(f32::from_bits(bits)))
            }
            0xcb => object(py, f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => object(py, self.uint(1 << (c - 0xcc))?),
            0xd0..=0xd3 => {
                let size = 1 << (c - 0xd0);
                let raw = self.uint(size)?;
                let shift = 64 - 8 * size as u32;
                object(py, ((raw << shift) as i64) >> shift) // sign-extended
            }
            0xd9..=0xdb => {
                let n = self.uint(1 << (c - 0xd9))? as usize;
                self.str(py, n)
            }
            0xdc | 0xdd => {
                let n = self.count(if c == 0xdc { 2 } else { 4 })?;
                self.array(py, n, depth)
            }
            0xde | 0xdf => {
                let n = self.count(if c == 0xde { 2 } else { 4 })?;
                self.map(py, n, depth)
            }
            // 0xc1 (never used) and the ext types (timestamps included): the Python path.
            _ => Err(Declined),
        }
    }

    fn str(&mut self, py: Python<'py>, n: usize) -> Decoded<'py> {
        Ok(text(py, self.take(n)?)?.into_any())
    }

    fn array(&mut self, py: Python<'py>, n: usize, depth: usize) -> Decoded<'py> {
        if depth >= MAX_DEPTH {
            return Err(Declined);
        }
        let list = PyList::empty(py);
        for _ in 0..n {
            list.append(self.value(py, depth + 1)?)
                .map_err(|_| Declined)?;
        }
        Ok(list.into_any())
    }

    fn map(&mut self, py: Python<'py>, n: usize, depth: usize) -> Decoded<'py> {
        if depth >= MAX_DEPTH {
            return Err(Declined);
        }
        let dict = PyDict::new(py);
        for place in 0..n {
            let c = self.byte()?;
            let len = match c {
                0xa0..=0xbf => usize::from(c & 0x1f),
                0xd9..=0xdb => self.uint(1 << (c - 0xd9))? as usize,
                _ => return Err(Declined), // a key that is not a string: the Python path names it
            };
            let key = self.key(py, place, len)?;
            let value = self.value(py, depth + 1)?;
            dict.set_item(key, value).map_err(|_| Declined)?; // a repeated key: the last wins
        }
        Ok(dict.into_any())
    }

    /// The key of `len` bytes at `place` in its map: the one remembered there if the bytes are
    /// the same (it was checked as UTF-8 when it was decoded), else decoded and remembered.
    fn key(&mut self, py: Python<'py>, place: usize, len: usize) -> Decoded<'py> {
        let bytes = self.take(len)?;
        if let Some(Some((known, key))) = self.keys.get(place) {
            if *known == bytes {
                return Ok(key.clone().into_any());
            }
        }
        let key = text(py, bytes)?;
        if let Some(slot) = self.keys.get_mut(place) {
            *slot = Some((bytes, key.clone()));
        }
        Ok(key.into_any())
    }
}

/// A Python object for a decoded scalar (none of these conversions can fail: a failure is a
/// decline all the same).
fn object<'py>(py: Python<'py>, value: impl IntoPyObject<'py>) -> Decoded<'py> {
    value.into_bound_py_any(py).map_err(|_| Declined)
}

/// The `str` of `bytes`, which must be UTF-8 (the Python path names a frame that is not).
fn text<'py>(py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyString>, Declined> {
    let text = std::str::from_utf8(bytes).map_err(|_| Declined)?;
    Ok(PyString::new(py, text))
}

/// The value `data` (any buffer of bytes) holds, or `declined` when the Python path must decode
/// it (see the module's documentation). The same value as the Python codec's `decode`.
#[pyfunction]
pub fn unpack<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    declined: &Bound<'py, PyAny>,
) -> Bound<'py, PyAny> {
    let decoded = if let Ok(bytes) = data.downcast_exact::<PyBytes>() {
        decode(py, bytes.as_bytes())
    } else {
        match PyBuffer::<u8>::get(data) {
            Ok(buffer) if buffer.is_c_contiguous() => {
                // SAFETY: the buffer is held (exported: it cannot be resized or freed) for the
                // whole decoding, which runs with the GIL held.
                let bytes = unsafe {
                    std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, buffer.len_bytes())
                };
                decode(py, bytes)
            }
            _ => Err(Declined),
        }
    };
    decoded.unwrap_or_else(|Declined| declined.clone())
}

pub(crate) fn decode<'py>(py: Python<'py>, data: &[u8]) -> Decoded<'py> {
    let mut reader = Reader::new(data);
    let value = reader.value(py, 0)?;
    if !reader.at_end() {
        return Err(Declined); // trailing bytes: the Python path says so
    }
    Ok(value)
}
