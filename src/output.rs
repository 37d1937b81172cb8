//! Standard output for the commands: every write goes through here, so that a reader that
//! goes away (`nfsio cat URL | head`) ends the command quietly, as it does coreutils, instead
//! of a panic in `println!` or a `Broken pipe` message.

use std::fmt;
use std::io::Write;

use crate::report::Failure;

/// Writes `text` to standard output.
pub fn print(text: fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(text)
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}

/// `println!` that returns a [`Failure`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns a [`Failure`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
