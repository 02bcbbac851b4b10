//! Answers taken straight from the receive buffer: the frames of a data channel that carry the
//! successful responses to our requests, cut, decoded and classified in one call (spec 2, 3.2,
//! 4.2).
//!
//! A parent with many requests in flight receives mostly answers, each in a small frame of its
//! own. The Python path cuts each frame out of the buffer (a copy), decodes it into a map, then
//! looks the map over to see that it is an answer, and builds a message object: per answer, more
//! than the request's own sending. Here an answer is read from the buffer where it lies, and only
//! its id and its result become Python objects.
//!
//! Only a frame that is certainly a successful response is taken: a map of exactly the members
//! `jsonrpc` (the string "2.0"), `id` (an integer or a string) and `result`, each once, with
//! nothing after it. At the first frame that is anything else, incomplete or larger than the
//! caller's limit, this stops, and the Python path takes that frame as it would have: its decoded
//! value is handed back when the core could build it, so that it is not decoded twice.

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString};

use crate::unpack::{decode, Declined, Reader};

/// A frame's first bytes that make it an answer: a map of three members (fixmap 3).
const MAP_OF_THREE: u8 = 0x83;
/// The one version there is, as the fixstr every SDK writes: `"2.0"`.
const VERSION: &[u8] = b"\xa32.0";

/// What the frame at the reading position is.
enum Frame<'py> {
    /// A successful response: its id and its result.
    Answer(Bound<'py, PyAny>, Bound<'py, PyAny>),
    /// Anything else the core decodes: the value, for the Python path to classify.
    Other(Bound<'py, PyAny>),
}

/// Take the answers among the complete frames of `buffer` (a bytearray or other buffer) from
/// `start` (the arguments come in this order so that a caller may bind the first two once):
/// append each one's id and result to `answers` (flat: id, result, id, result...), and
/// stop at the first frame that is not an answer, is incomplete, is empty or is longer than
/// `limit` bytes. Returns where it stopped and, for a frame there that the core decoded but did
/// not take, its value; `declined` otherwise (no complete frame there, or one the Python path
/// must decode itself: it raises the error that names what is wrong).
#[pyfunction]
pub fn take_answers<'py>(
    py: Python<'py>,
    answers: &Bound<'py, PyList>,
    declined: &Bound<'py, PyAny>,
    buffer: &Bound<'py, PyAny>,
    start: usize,
    limit: usize,
) -> PyResult<(usize, Bound<'py, PyAny>)> {
    let view = PyBuffer::<u8>::get(buffer)?;
    if !view.is_c_contiguous() {
        return Ok((start, declined.clone()));
    }
    // SAFETY: the buffer is held (exported: a bytearray cannot be resized or freed while it is)
    // for the whole call, which runs with the GIL held.
    let data = unsafe { std::slice::from_raw_parts(view.buf_ptr() as *const u8, view.len_bytes()) };
    let mut pos = start;
    loop {
        let Some(frame) = data.get(pos..).and_then(|rest| small_frame(rest, limit)) else {
            return Ok((pos, declined.clone()));
        };
        match classify(py, frame) {
            Ok(Frame::Answer(id, result)) => {
                answers.append(id)?;
                answers.append(result)?;
                pos += 4 + frame.len();
            }
            Ok(Frame::Other(value)) => return Ok((pos, value)),
            Err(Declined) => return Ok((pos, declined.clone())),
        }
    }
}

/// The payload of the frame at the front of `rest`, if it is complete and 1..=`limit` bytes.
fn small_frame(rest: &[u8], limit: usize) -> Option<&[u8]> {
    let header: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let length = u32::from_be_bytes(header) as usize;
    if length == 0 || length > limit {
        return None; // the Python path fails the stream, or takes the large frame its own way
    }
    rest.get(4..4 + length)
}

/// The frame as an answer, else as a value for the Python path.
fn classify<'py>(py: Python<'py>, frame: &[u8]) -> Result<Frame<'py>, Declined> {
    if let Some(answer) = answer(py, frame)? {
        return Ok(answer);
    }
    Ok(Frame::Other(decode(py, frame)?))
}

/// The frame's id and result if it is a successful response; None if it is well-formed so far
/// but not certainly one (the frame is then decoded whole); Declined if it is malformed.
fn answer<'py>(py: Python<'py>, frame: &[u8]) -> Result<Option<Frame<'py>>, Declined> {
    let mut reader = Reader::new(frame);
    if reader.byte()? != MAP_OF_THREE {
        return Ok(None);
    }
    let (mut version, mut id, mut result) = (false, None, None);
    for _ in 0..3 {
        let c = reader.byte()?;
        if !(0xa0..=0xbf).contains(&c) {
            return Ok(None); // not one of the three names, each a fixstr
        }
        match reader.take(usize::from(c & 0x1f))? {
            b"jsonrpc" if !version => {
                if reader.take(VERSION.len())? != VERSION {
                    return Ok(None);
                }
                version = true;
            }
            b"id" if id.is_none() => {
                let value = reader.value(py, 1)?;
                // Every MessagePack integer is within the spec's id range (4.1).
                if !(value.is_exact_instance_of::<PyInt>()
                    || value.is_exact_instance_of::<PyString>())
                {
                    return Ok(None);
                }
                id = Some(value);
            }
            b"result" if result.is_none() => result = Some(reader.value(py, 1)?),
            _ => return Ok(None), // another member, or one twice
        }
    }
    if !reader.at_end() {
        return Err(Declined); // trailing bytes: the Python path says so
    }
    match (version, id, result) {
        (true, Some(id), Some(result)) => Ok(Some(Frame::Answer(id, result))),
        _ => Ok(None),
    }
}
