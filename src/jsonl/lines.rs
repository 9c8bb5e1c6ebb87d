//! Reading an import line by line, each line bounded.

use std::io::{BufRead, Read};

use crate::error::{Error, Result};
use crate::limits::MAX_IMPORT_LINE_BYTES;

/// The lines of an import, each read to at most [`MAX_IMPORT_LINE_BYTES`]
/// (plus its newline): `BufRead::lines` would grow a line without end.
pub(super) struct Lines<R> {
    pub(super) input: R,
    /// The number of the last line read (1-based).
    pub(super) number: u64,
    pub(super) buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// The next line's number and text (without its `\n` or `\r\n`);
    /// `None` at the end of the input.
    pub(super) fn next_line(&mut self) -> Option<(u64, Result<String>)> {
        self.buffer.clear();
        let limit = MAX_IMPORT_LINE_BYTES as u64 + 2;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buffer);
        let number = self.number + 1;
        let refuse = |reason: String| {
            Some((
                number,
                Err(Error::Import {
                    line: number,
                    reason,
                }),
            ))
        };
        match read {
            Ok(0) => return None,
            Ok(_) => self.number = number,
            Err(e) => return refuse(format!("cannot read the line: {e}")),
        }
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
        }
        if self.buffer.len() > MAX_IMPORT_LINE_BYTES {
            return refuse(format!(
                "the line is longer than {MAX_IMPORT_LINE_BYTES} bytes (the longest a record \
                 can be); nothing was read past that"
            ));
        }
        match String::from_utf8(std::mem::take(&mut self.buffer)) {
            Ok(line) => Some((number, Ok(line))),
            Err(e) => refuse(format!("cannot read the line: it is not UTF-8 ({e})")),
        }
    }
}
