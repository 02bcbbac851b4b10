//! The compiled core of aspect-ipc: the MessagePack encoding of plain messages, checked and
//! packed in one pass over the value; and their decoding, checked in one pass over the bytes
//! (`unpack.rs`); and the answers to our requests, taken straight from the receive buffer
//! (`answers.rs`).
//!
//! The Python codec (`aspect_ipc.codecs.MessagePackCodec`) walks a message once to check it (string
//! keys, nesting, integer range: spec 3.2, 3.4) and msgpack walks it again to pack it. For the
//! messages most programs send, exact `dict`/`list`/`str`/`int`/`float`/`bytes` values, this module
//! does both at once. It answers only what it is sure of: anything else (a subclass, a value of
//! another type, a key that is not a string, an integer out of range, a lone surrogate, nesting
//! deeper than 32 levels, a binary large enough to be sent uncopied) gives `None`, and the caller
//! takes the Python path, which sends it or raises the error that names the problem. So the two
//! paths cannot disagree on an error, and the bytes they write are the same (a property test holds
//! them to it).
//!
//! No Python code runs while a value is walked (exact built-in types only: no `__iter__`, no
//! `__hash__`), so nothing can change the value under the walk while the GIL is held.

mod answers;
mod unpack;

use std::cell::RefCell;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// How deep the core itself goes: values nested deeper (the spec allows 512 levels, 3.4) go to
/// the Python path, whose walks are loops. The core recurses, and a thread's stack can be small
/// (`threading.stack_size` accepts 32 KiB): 512 levels of recursion overflowed a 128 KiB stack,
/// 32 levels need a few KiB. Messages nest a few levels; nothing is lost but speed beyond 32.
pub(crate) const MAX_DEPTH: usize = 32;
/// Binaries from this size on go to the Python path, which writes them without copying them.
const LARGE_BINARY: usize = 64 * 1024;
/// The scratch buffer is kept between calls up to this size (a larger one is given back).
const KEEP_SCRATCH: usize = 1024 * 1024;
/// Bumped whenever a function's contract changes; the Python side refuses any other.
const API_VERSION: u32 = 3;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
}

/// Why a value goes to the Python path. Not an error: the Python path decides.
struct NotPlain;

type Packed = Result<(), NotPlain>;

fn write_header(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, b16: u8, b32: u8) -> Packed {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        return Err(NotPlain); // beyond MessagePack's 32-bit lengths: the Python path says so
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &Bound<'_, PyString>) -> Packed {
    // A lone surrogate cannot be encoded as UTF-8: the Python path names where it is.
    let text = s.to_str().map_err(|_| NotPlain)?;
    let n = text.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else {
        write_sized(out, n, [0xd9, 0xda, 0xdb])?; // str 8 too: msgpack's use_bin_type=True
    }
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// The header of a `str` or `bin` of `n` bytes with an 8, 16 or 32-bit length: `types` are the
/// three type bytes.
fn write_sized(out: &mut Vec<u8>, n: usize, types: [u8; 3]) -> Packed {
    if n <= 0xff {
        out.push(types[0]);
        out.push(n as u8);
        Ok(())
    } else {
        write_header(out, n, 0, 0, types[1], types[2]) // fix_max 0: n is above it
    }
}

/// The shortest form, as msgpack writes it: positive values as unsigned, negative as signed.
fn write_int(out: &mut Vec<u8>, v: &Bound<'_, PyAny>) -> Packed {
    if let Ok(i) = v.extract::<i64>() {
        if i >= 0 {
            return write_unsigned(out, i as u64);
        }
        if i >= -32 {
            out.push(i as i8 as u8);
        } else if i >= i8::MIN as i64 {
            out.push(0xd0);
            out.push(i as i8 as u8);
        } else if i >= i16::MIN as i64 {
            out.push(0xd1);
            out.extend_from_slice(&(i as i16).to_be_bytes());
        } else if i >= i32::MIN as i64 {
            out.push(0xd2);
            out.extend_from_slice(&(i as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
        return Ok(());
    }
    // Above i64 and up to 2**64 - 1 is still in range (spec 3.2); beyond it, the Python path.
    let u: u64 = v.extract().map_err(|_| NotPlain)?;
    write_unsigned(out, u)
}

fn write_unsigned(out: &mut Vec<u8>, u: u64) -> Packed {
    if u < 128 {
        out.push(u as u8);
    } else if u <= 0xff {
        out.push(0xcc);
        out.push(u as u8);
    } else if u <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(u as u16).to_be_bytes());
    } else if u <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(u as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
    Ok(())
}

/// A container inside `depth` others: past MAX_DEPTH, the Python path (which refuses a 513th
/// level, naming its place).
fn enter(depth: usize) -> Packed {
    if depth >= MAX_DEPTH {
        return Err(NotPlain);
    }
    Ok(())
}

/// Write `v`, a value inside `depth` containers.
fn write_value(out: &mut Vec<u8>, v: &Bound<'_, PyAny>, depth: usize) -> Packed {
    if let Ok(s) = v.downcast_exact::<PyString>() {
        return write_str(out, s);
    }
    if v.is_none() {
        out.push(0xc0);
        return Ok(());
    }
    if v.is_exact_instance_of::<PyInt>() {
        return write_int(out, v);
    }
    if let Ok(f) = v.downcast_exact::<PyFloat>() {
        out.push(0xcb); // float 64 always: the spec carries no float 32 (3.2)
        out.extend_from_slice(&f.value().to_be_bytes());
        return Ok(());
    }
    if let Ok(b) = v.downcast_exact::<PyBool>() {
        out.push(if b.is_true() { 0xc3 } else { 0xc2 });
        return Ok(());
    }
    if let Ok(d) = v.downcast_exact::<PyDict>() {
        enter(depth)?;
        write_header(out, d.len(), 0x80, 15, 0xde, 0xdf)?;
        for (key, value) in d.iter() {
            let key = key.downcast_exact::<PyString>().map_err(|_| NotPlain)?;
            write_str(out, key)?;
            write_value(out, &value, depth + 1)?;
        }
        return Ok(());
    }
    if let Ok(l) = v.downcast_exact::<PyList>() {
        return write_array(out, l.len(), l.iter(), depth);
    }
    if let Ok(t) = v.downcast_exact::<PyTuple>() {
        return write_array(out, t.len(), t.iter(), depth); // msgpack packs a tuple as an array
    }
    if let Ok(b) = v.downcast_exact::<PyBytes>() {
        let data = b.as_bytes();
        if data.len() >= LARGE_BINARY {
            return Err(NotPlain);
        }
        write_sized(out, data.len(), [0xc4, 0xc5, 0xc6])?;
        out.extend_from_slice(data);
        return Ok(());
    }
    Err(NotPlain) // bytearray, memoryview, a subclass, any other type: the Python path
}

fn write_array<'py>(
    out: &mut Vec<u8>,
    len: usize,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> Packed {
    enter(depth)?;
    write_header(out, len, 0x90, 15, 0xdc, 0xdd)?;
    for item in items {
        write_value(out, &item, depth + 1)?;
    }
    Ok(())
}

/// `value` packed as MessagePack under the spec's mapping, or `None` when the Python path must
/// decide (see the module's documentation). The same bytes as the Python codec's `encode`.
#[pyfunction]
fn pack<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> Option<Bound<'py, PyBytes>> {
    with_scratch(|out| {
        write_value(out, value, 0).ok()?;
        Some(PyBytes::new(py, out))
    })
}

/// `value` packed as [`pack`] packs it, behind the 4-byte big-endian length of a data channel's
/// frame (spec 2): the whole frame in one `bytes`. `None` where `pack` gives `None`, and for a
/// payload longer than `limit` bytes (the Python path raises the error that names the limit).
/// The limit comes first so that a caller may bind it once.
#[pyfunction]
fn pack_frame<'py>(
    py: Python<'py>,
    limit: usize,
    value: &Bound<'py, PyAny>,
) -> Option<Bound<'py, PyBytes>> {
    with_scratch(|out| {
        out.extend_from_slice(&[0; 4]);
        write_value(out, value, 0).ok()?;
        let length = out.len() - 4;
        if length > limit {
            return None;
        }
        out[..4].copy_from_slice(&(length as u32).to_be_bytes());
        Some(PyBytes::new(py, out))
    })
}

/// `write` run on this thread's scratch buffer, emptied first; the buffer is kept for the next
/// call unless it grew large.
fn with_scratch<R>(write: impl FnOnce(&mut Vec<u8>) -> Option<R>) -> Option<R> {
    SCRATCH.with(|scratch| {
        let mut out = scratch.borrow_mut();
        out.clear();
        let written = write(&mut out);
        if out.capacity() > KEEP_SCRATCH {
            *out = Vec::with_capacity(4096);
        }
        written
    })
}

#[pymodule]
fn aspect_ipc_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("API_VERSION", API_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(pack_frame, m)?)?;
    m.add_function(wrap_pyfunction!(unpack::unpack, m)?)?;
    m.add_function(wrap_pyfunction!(answers::take_answers, m)?)?;
    Ok(())
}
