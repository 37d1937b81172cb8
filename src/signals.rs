//! SIGINT and SIGTERM, watched from the moment a command starts.
//!
//! A command that prints a line a script waits for (`serve`'s URL, `demo`'s server line) must
//! already handle the signals that line invites: the handlers are installed by
//! [`Termination::install`], before anything is bound or printed, so a SIGTERM that follows
//! the line at once stops the command cleanly instead of killing it.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The termination signals a command stops on.
pub struct Termination {
    interrupt: Signal,
    terminate: Signal,
}

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Stop {
    /// The signal's name, as `kill -l` prints it with the SIG prefix.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }
}

impl Termination {
    /// Installs the handlers now (tokio registers them when the streams are created, not
    /// when they are first polled). Must run inside the runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves when SIGINT or SIGTERM arrives (also one that arrived before this call).
    pub async fn wait(&mut self) -> Stop {
        tokio::select! {
            biased;
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
        }
    }
}
