//! Property tests: random application operations against the engine, a model server that
//! reorders, short-writes, fails, changes verifiers and crashes, and a model of what the
//! application wrote.
//!
//! Checked after every step:
//! - the engine's own invariants ([`Engine::check_invariants`]);
//! - the durability invariant, semantically: every byte the application wrote whose newest
//!   content is not in the server's durable image is dirty, in flight or unstable in the cache;
//! - every read returns the model's content;
//! - every `fsync`/`close` that returned Ok left the server's durable image equal to the
//!   model's content as of when it began (bytes not rewritten since);
//! - every failed WRITE or COMMIT is reported exactly once per open file, at a `fsync` or
//!   `close`; writes refused promptly only after ENOSPC/EDQUOT;
//! - liveness: once the server behaves, every `fsync`, `close` and truncation completes within
//!   a bounded number of steps.
//!
//! Bytes the engine dropped after a failure are "uncertain" in the model (any content is
//! accepted) until the application writes them again.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256) for a longer soak; `MODEL_TRACE=1`
//! prints every action, call and reply.

mod common;

use std::collections::BTreeMap;

use common::{Server, handle};
use nfsio_cache::{
    Advice, Engine, EngineConfig, Event, ExtentState, FileError, FileId, Op, ReadOutcome, Reply,
    SyncTicket, Transmit, WaitToken, WriteOutcome,
};
use nfsio_proto::nfs3::{Nfs3Status, StableHow};
use proptest::prelude::*;

const FILES: usize = 2;
const MAX_OFFSET: u16 = 6000;

#[derive(Debug, Clone)]
enum Action {
    Write {
        file: usize,
        offset: u16,
        len: u16,
        seed: u8,
    },
    Read {
        file: usize,
        offset: u16,
        len: u16,
    },
    Truncate {
        file: usize,
        size: u16,
    },
    Fsync {
        file: usize,
    },
    Close {
        file: usize,
    },
    /// The file's reader advises no reuse (drop-behind) or normal use.
    Advise {
        file: usize,
        no_reuse: bool,
    },
    Step {
        count: u8,
    },
    Crash,
    Tick {
        ms: u16,
    },
}

/// How badly the server behaves, in percent per call.
#[derive(Debug, Clone, Default)]
struct Faults {
    error: u8,
    jukebox: u8,
    retry: u8,
    short: u8,
    zero_count: u8,
    upgrade: u8,
    downgrade: u8,
    read_error: u8,
    crash: bool,
    never_match: bool,
}

fn faults() -> impl Strategy<Value = Faults> {
    let bad = (
        0..6u8,
        0..8u8,
        0..6u8,
        0..20u8,
        0..2u8,
        0..10u8,
        0..3u8,
        0..5u8,
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(
                error,
                jukebox,
                retry,
                short,
                zero_count,
                upgrade,
                downgrade,
                read_error,
                crash,
                never_match,
            )| {
                Faults {
                    error,
                    jukebox,
                    retry,
                    short,
                    zero_count,
                    upgrade,
                    downgrade,
                    read_error,
                    crash,
                    never_match,
                }
            },
        );
    prop_oneof![1 => Just(Faults::default()), 2 => bad]
}

fn action() -> impl Strategy<Value = Action> {
    let file = 0..FILES;
    prop_oneof![
        8 => (file.clone(), 0..MAX_OFFSET, 1..1500u16, any::<u8>())
            .prop_map(|(file, offset, len, seed)| Action::Write { file, offset, len, seed }),
        3 => (file.clone(), 0..MAX_OFFSET + 500, 1..3000u16)
            .prop_map(|(file, offset, len)| Action::Read { file, offset, len }),
        1 => (file.clone(), 0..MAX_OFFSET + 500)
            .prop_map(|(file, size)| Action::Truncate { file, size }),
        2 => file.clone().prop_map(|file| Action::Fsync { file }),
        1 => file.clone().prop_map(|file| Action::Close { file }),
        1 => (file, any::<bool>()).prop_map(|(file, no_reuse)| Action::Advise { file, no_reuse }),
        10 => (1..10u8).prop_map(|count| Action::Step { count }),
        1 => Just(Action::Crash),
        1 => (0..3000u16).prop_map(|ms| Action::Tick { ms }),
    ]
}

fn config() -> EngineConfig {
    EngineConfig {
        page_bytes: 512,
        wsize_bytes: 2048,
        rsize_bytes: 2048,
        max_inflight_writes: 4,
        max_inflight_reads: 2,
        memory_bound_bytes: 8192,
        background_flush_bytes: 2048,
        commit_threshold_bytes: 3072,
        streaming_window_bytes: 4096,
        readahead_initial_bytes: 1024,
        readahead_max_bytes: 4096,
        dirty_expire_ms: 5_000,
        retry_initial_ms: 100,
        retry_max_ms: 800,
        verifier_mismatch_limit: 3,
        bridge_gap_bytes: 768,
    }
}

/// What the application wrote to one file.
#[derive(Debug, Clone, Default)]
struct ModelFile {
    content: Vec<u8>,
    /// Bytes the engine dropped after a failure: any content is accepted.
    uncertain: Vec<bool>,
    /// Bytes an application write produced (the rest are holes: zeros of an extension).
    written: Vec<bool>,
    /// A failure may have lost an extension: the server's size is the truth at reopen.
    size_uncertain: bool,
}

impl ModelFile {
    fn resize(&mut self, size: usize) {
        self.content.resize(size, 0);
        self.uncertain.resize(size, false);
        self.written.resize(size, false);
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        if self.content.len() < end {
            self.resize(end);
        }
        self.content[offset..end].copy_from_slice(data);
        self.uncertain[offset..end].fill(false);
        self.written[offset..end].fill(true);
    }
}

#[derive(Debug)]
struct OpenInfo {
    file: usize,
    /// An error was delivered that this open has not reported yet.
    unreported: bool,
    /// ENOSPC/EDQUOT/EFBIG delivered and not reported yet: writes may be refused.
    sticky: bool,
}

/// A `fsync` or `close` in progress, with the content it must make durable.
#[derive(Debug)]
struct Check {
    ticket: SyncTicket,
    open: FileId,
    file: usize,
    snapshot: Vec<u8>,
    /// Bytes written or truncated after the sync began (not its business).
    excluded: Vec<bool>,
    close: bool,
}

struct Harness {
    read_errors_possible: bool,
    engine: Engine,
    server: Server,
    faults: Faults,
    now_ms: u64,
    rng: u64,
    /// Sent, not executed by the server.
    pending: Vec<Transmit>,
    /// Executed, reply not delivered.
    executed: Vec<(Transmit, Reply)>,
    models: Vec<ModelFile>,
    current: Vec<FileId>,
    opens: BTreeMap<FileId, OpenInfo>,
    checks: Vec<Check>,
    truncations: BTreeMap<SyncTicket, usize>,
    blocked: Vec<(WaitToken, FileId, u64, Vec<u8>)>,
    reads: Vec<(WaitToken, FileId, u64, usize)>,
}

fn name(file: usize) -> String {
    format!("f{file}")
}

fn file_of(t: &Transmit) -> usize {
    (0..FILES)
        .find(|&f| handle(&name(f)) == t.handle)
        .expect("known file")
}

impl Harness {
    fn new(faults: Faults, seed: u64) -> Self {
        let mut server = Server {
            commit_verf_never_matches: faults.never_match,
            ..Server::default()
        };
        let mut engine = Engine::new(config()).expect("config");
        let mut current = Vec::new();
        let mut opens = BTreeMap::new();
        for f in 0..FILES {
            let fh = handle(&name(f));
            let attrs = server.attrs(&fh);
            let id = engine.open(fh, &attrs, 0);
            current.push(id);
            opens.insert(
                id,
                OpenInfo {
                    file: f,
                    unreported: false,
                    sticky: false,
                },
            );
        }
        Self {
            read_errors_possible: faults.read_error > 0,
            engine,
            server,
            faults,
            now_ms: 0,
            rng: seed | 1,
            pending: Vec::new(),
            executed: Vec::new(),
            models: vec![ModelFile::default(); FILES],
            current,
            opens,
            checks: Vec::new(),
            truncations: BTreeMap::new(),
            blocked: Vec::new(),
            reads: Vec::new(),
        }
    }

    fn rand(&mut self, below: u64) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }

    fn roll(&mut self, percent: u8) -> bool {
        self.rand(100) < u64::from(percent)
    }

    // ---- application -----------------------------------------------------------------

    fn write(&mut self, file: usize, offset: u64, data: Vec<u8>) {
        let open = self.current[file];
        self.try_write(open, offset, data);
    }

    fn try_write(&mut self, open: FileId, offset: u64, data: Vec<u8>) {
        // Half the writes hand the cache a buffer it may keep (`write_owned`): the model
        // then catches any byte of one buffer showing up where another write put its own.
        let outcome = if self.roll(50) {
            let buf = bytes::BytesMut::from(&data[..]);
            match self.engine.write_owned(open, offset, buf, self.now_ms) {
                Ok(nfsio_cache::OwnedWrite::Accepted) => Ok(WriteOutcome::Accepted),
                Ok(nfsio_cache::OwnedWrite::Blocked(token, back)) => {
                    assert_eq!(&back[..], &data[..], "a blocked write gives its bytes back");
                    Ok(WriteOutcome::Blocked(token))
                }
                Err(e) => Err(e),
            }
        } else {
            self.engine.write(open, offset, &data, self.now_ms)
        };
        match outcome {
            Ok(WriteOutcome::Accepted) => {
                let file = self.opens[&open].file;
                self.models[file].write(offset as usize, &data);
                self.exclude(file, offset as usize, offset as usize + data.len());
            }
            Ok(WriteOutcome::Blocked(token)) => self.blocked.push((token, open, offset, data)),
            Err(FileError::Status(status)) => {
                let info = &self.opens[&open];
                assert!(
                    info.sticky,
                    "write refused with {status:?} without an unreported ENOSPC/EDQUOT"
                );
            }
            Err(FileError::NotOpen) => {}
            Err(e) => panic!("write failed: {e}"),
        }
    }

    /// Syncs in progress on `file` are not about bytes changed now.
    fn exclude(&mut self, file: usize, start: usize, end: usize) {
        for check in self.checks.iter_mut().filter(|c| c.file == file) {
            let len = check.excluded.len();
            check.excluded[start.min(len)..end.min(len)].fill(true);
        }
    }

    fn read(&mut self, open: FileId, offset: u64, len: usize) {
        match self.engine.read(open, offset, len, self.now_ms) {
            Ok(ReadOutcome::Data(data)) => {
                let file = self.opens[&open].file;
                let model = &self.models[file];
                let size = model.content.len();
                let expected_len = size.saturating_sub(offset as usize).min(len);
                assert!(
                    data.len() <= expected_len && (!data.is_empty() || expected_len == 0),
                    "read of {len} at {offset} in f{file} (size {size}) returned {} bytes",
                    data.len()
                );
                for (i, byte) in data.iter().enumerate() {
                    let at = offset as usize + i;
                    assert!(
                        model.uncertain[at] || model.content[at] == *byte,
                        "read f{file} byte {at}: got {byte}, wrote {}",
                        model.content[at]
                    );
                }
            }
            Ok(ReadOutcome::Wait(token)) => self.reads.push((token, open, offset, len)),
            Err(FileError::Status(_)) => {
                assert!(self.read_errors_possible, "read error without READ faults");
            }
            Err(FileError::NotOpen) => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }

    fn truncate(&mut self, file: usize, size: usize) {
        let open = self.current[file];
        let ticket = self
            .engine
            .truncate(open, size as u64, self.now_ms)
            .expect("truncate");
        let model = &mut self.models[file];
        let old = model.content.len();
        model.resize(size);
        if size > old {
            // An extension reads as zeros, certain.
            model.uncertain[old..].fill(false);
        }
        self.exclude(file, size.min(old), usize::MAX);
        self.truncations.insert(ticket, file);
    }

    fn sync(&mut self, file: usize, close: bool) {
        let open = self.current[file];
        let snapshot = self.models[file].content.clone();
        let ticket = if close {
            self.engine.close(open, self.now_ms)
        } else {
            self.engine.fsync(open, self.now_ms)
        }
        .expect("sync of an open file");
        self.checks.push(Check {
            ticket,
            open,
            file,
            excluded: vec![false; snapshot.len()],
            snapshot,
            close,
        });
        if close {
            self.reopen(file);
        }
    }

    fn reopen(&mut self, file: usize) {
        let fh = handle(&name(file));
        let attrs = self.server.attrs(&fh);
        let id = self.engine.open(fh, &attrs, self.now_ms);
        let size = self.engine.size_bytes(id).expect("open") as usize;
        let model = &mut self.models[file];
        if size != model.content.len() {
            // Only after a failure lost an extension: the engine adopted the server's size.
            assert!(
                model.size_uncertain,
                "reopen of f{file}: size {size} != written {}",
                model.content.len()
            );
            let old = model.content.len();
            model.resize(size);
            if size > old {
                model.uncertain[old..].fill(true);
            }
        }
        if size as u64 == attrs.size {
            model.size_uncertain = false;
        }
        self.current[file] = id;
        self.opens.insert(
            id,
            OpenInfo {
                file,
                unreported: false,
                sticky: false,
            },
        );
    }

    // ---- server ----------------------------------------------------------------------

    fn execute(&mut self, i: usize) {
        let t = self.pending.remove(i);
        let reply = match &t.op {
            Op::Write {
                offset_bytes,
                data,
                stable,
            } => {
                let len = data.len();
                let f = self.faults.clone();
                let verf = self.server.write_verf();
                if self.roll(f.error) {
                    let statuses = [Nfs3Status::NoSpc, Nfs3Status::Io, Nfs3Status::DQuot];
                    Reply::Status(statuses[self.rand(3) as usize])
                } else if self.roll(f.jukebox) {
                    Reply::Status(Nfs3Status::Jukebox)
                } else if self.roll(f.retry) {
                    if self.rand(2) == 0 {
                        self.server.execute(&t);
                    }
                    Reply::Retry
                } else if self.roll(f.zero_count) {
                    Reply::Write {
                        count_bytes: 0,
                        committed: *stable,
                        verf,
                        post_op_attrs: None,
                    }
                } else {
                    let count = if len > 1 && self.roll(f.short) {
                        1 + self.rand(len as u64 - 1) as usize
                    } else {
                        len
                    };
                    let committed = if *stable == StableHow::Unstable && self.roll(f.upgrade) {
                        StableHow::FileSync
                    } else if *stable != StableHow::Unstable && self.roll(f.downgrade) {
                        StableHow::Unstable
                    } else {
                        *stable
                    };
                    self.server.apply_write(
                        &t.handle,
                        *offset_bytes,
                        &data.to_bytes()[..count],
                        committed != StableHow::Unstable,
                    );
                    Reply::Write {
                        count_bytes: count as u32,
                        committed,
                        verf,
                        post_op_attrs: None,
                    }
                }
            }
            Op::Commit { .. } => {
                let f = self.faults.clone();
                if self.roll(f.error) {
                    Reply::Status(Nfs3Status::Io)
                } else if self.roll(f.jukebox) {
                    Reply::Status(Nfs3Status::Jukebox)
                } else if self.roll(f.retry) {
                    if self.rand(2) == 0 {
                        self.server.execute(&t);
                    }
                    Reply::Retry
                } else {
                    self.server.execute(&t)
                }
            }
            Op::Read { .. } => {
                let f = self.faults.clone();
                if self.roll(f.read_error) {
                    Reply::Status(Nfs3Status::Io)
                } else if self.roll(f.jukebox) {
                    Reply::Status(Nfs3Status::Jukebox)
                } else if self.roll(f.retry) {
                    Reply::Retry
                } else {
                    self.server.execute(&t)
                }
            }
            Op::Setattr { .. } => {
                let f = self.faults.clone();
                if self.roll(f.jukebox) {
                    Reply::Status(Nfs3Status::Jukebox)
                } else if self.roll(f.retry) {
                    if self.rand(2) == 0 {
                        self.server.execute(&t);
                    }
                    Reply::Retry
                } else {
                    self.server.execute(&t)
                }
            }
        };
        self.executed.push((t, reply));
    }

    /// Per byte of `file`: 0 uncached, 1 clean, 2 not known durable.
    fn states(&self, file: usize) -> Vec<u8> {
        let size = self.models[file].content.len();
        let mut out = vec![0u8; size];
        for ext in self
            .engine
            .extents(self.current[file])
            .expect("current open")
        {
            let state = if ext.state == ExtentState::Clean {
                1
            } else {
                2
            };
            let start = ext.offset_bytes as usize;
            let end = (start + ext.data.len()).min(size);
            if start < end {
                out[start..end].fill(state);
            }
        }
        out
    }

    fn deliver(&mut self, i: usize) {
        let (t, reply) = self.executed.remove(i);
        if trace() {
            eprintln!("reply {:?} f{} {}", t.id, file_of(&t), brief_reply(&reply));
        }
        let file = file_of(&t);
        let failure = match (&t.op, &reply) {
            (Op::Write { .. } | Op::Commit { .. }, Reply::Status(s))
                if *s != Nfs3Status::Jukebox =>
            {
                Some(*s)
            }
            (Op::Write { data, .. }, Reply::Write { count_bytes: 0, .. }) if !data.is_empty() => {
                Some(Nfs3Status::Io)
            }
            _ => None,
        };
        let before = failure.map(|_| self.states(file));
        self.engine.on_reply(t.id, reply, self.now_ms);
        if let (Some(status), Some(before)) = (failure, before) {
            let after = self.states(file);
            let model = &mut self.models[file];
            for (b, (was, now)) in before.iter().zip(&after).enumerate() {
                // Dropped bytes; and holes, whose existence on the server may have depended on
                // a dropped extension.
                if (*was == 2 && *now == 0) || !model.written[b] {
                    model.uncertain[b] = true;
                }
            }
            model.size_uncertain = true;
            let sticky = matches!(
                status,
                Nfs3Status::NoSpc | Nfs3Status::DQuot | Nfs3Status::FBig
            );
            for info in self.opens.values_mut().filter(|o| o.file == file) {
                info.unreported = true;
                info.sticky |= sticky;
            }
        }
    }

    fn step(&mut self) {
        let choices = self.pending.len() + self.executed.len();
        if choices == 0 {
            return;
        }
        let pick = self.rand(choices as u64) as usize;
        if pick < self.pending.len() {
            self.execute(pick);
        } else {
            self.deliver(pick - self.pending.len());
        }
    }

    // ---- after every action ----------------------------------------------------------

    fn settle(&mut self) {
        loop {
            while let Some(t) = self.engine.poll_transmit(self.now_ms) {
                for other in &self.pending {
                    if let (
                        Op::Write {
                            offset_bytes: a,
                            data: da,
                            ..
                        },
                        Op::Write {
                            offset_bytes: b,
                            data: db,
                            ..
                        },
                    ) = (&t.op, &other.op)
                    {
                        assert!(
                            t.handle != other.handle
                                || a + da.len() as u64 <= *b
                                || b + db.len() as u64 <= *a,
                            "overlapping WRITEs in flight"
                        );
                    }
                }
                if trace() {
                    eprintln!("send {:?} f{} {}", t.id, file_of(&t), brief_op(&t.op));
                }
                self.pending.push(t);
            }
            let Some(event) = self.engine.poll_event() else {
                break;
            };
            if trace() {
                eprintln!("event {event:?}");
            }
            match event {
                Event::SyncDone(ticket) => self.sync_done(ticket),
                Event::Wake(token) => {
                    if let Some(i) = self.blocked.iter().position(|b| b.0 == token) {
                        let (_, open, offset, data) = self.blocked.remove(i);
                        self.try_write(open, offset, data);
                    }
                    if let Some(i) = self.reads.iter().position(|r| r.0 == token) {
                        let (_, open, offset, len) = self.reads.remove(i);
                        self.read(open, offset, len);
                    }
                }
            }
        }
        self.engine.check_invariants().expect("engine invariants");
        self.check_durability_invariant();
    }

    fn sync_done(&mut self, ticket: SyncTicket) {
        let result = self
            .engine
            .poll_sync(ticket)
            .expect("result of a done ticket");
        if self.truncations.remove(&ticket).is_some() {
            assert_eq!(result, Ok(()), "SETATTR is never failed by this server");
            return;
        }
        let i = self
            .checks
            .iter()
            .position(|c| c.ticket == ticket)
            .expect("known ticket");
        let check = self.checks.remove(i);
        let info = self.opens.get_mut(&check.open).expect("open being synced");
        match result {
            Err(FileError::Status(_)) => {
                assert!(info.unreported, "error reported twice, or never delivered");
                info.unreported = false;
                info.sticky = false;
            }
            Ok(()) => {
                assert!(!info.unreported, "a failure was not reported");
                let model = &self.models[check.file];
                let durable = &self.server.file(&handle(&name(check.file))).durable;
                for (b, byte) in check.snapshot.iter().enumerate() {
                    if check.excluded[b] || model.uncertain.get(b).copied().unwrap_or(true) {
                        continue;
                    }
                    assert_eq!(
                        durable.get(b),
                        Some(byte),
                        "f{} byte {b} not durable after a successful sync",
                        check.file
                    );
                }
            }
            Err(e) => panic!("sync failed: {e}"),
        }
        if check.close {
            self.opens.remove(&check.open);
        }
    }

    /// Every written byte whose newest content is not durable is non-clean in the cache.
    fn check_durability_invariant(&mut self) {
        for file in 0..FILES {
            if self.truncations.values().any(|f| *f == file) {
                continue;
            }
            let states = self.states(file);
            let durable = self.server.file(&handle(&name(file))).durable.clone();
            let model = &self.models[file];
            for (b, state) in states.iter().enumerate() {
                if !model.written[b] || model.uncertain[b] {
                    continue;
                }
                if durable.get(b) != Some(&model.content[b]) {
                    assert_eq!(
                        *state,
                        2,
                        "f{file} byte {b}: newest content not durable, but the cache holds it as {}",
                        if *state == 1 { "clean" } else { "nothing" }
                    );
                }
            }
        }
    }

    fn act(&mut self, action: &Action) {
        if trace() {
            eprintln!("act {action:?}");
        }
        match *action {
            Action::Write {
                file,
                offset,
                len,
                seed,
            } => self.write(
                file,
                u64::from(offset),
                common::pattern(seed, usize::from(len)),
            ),
            Action::Read { file, offset, len } => {
                let open = self.current[file];
                self.read(open, u64::from(offset), usize::from(len));
            }
            Action::Truncate { file, size } => self.truncate(file, usize::from(size)),
            Action::Fsync { file } => self.sync(file, false),
            Action::Close { file } => self.sync(file, true),
            Action::Advise { file, no_reuse } => {
                let advice = if no_reuse {
                    Advice::NoReuse
                } else {
                    Advice::Normal
                };
                match self.engine.advise(self.current[file], advice) {
                    Ok(()) | Err(FileError::NotOpen) => {}
                    Err(error) => panic!("advise: {error}"),
                }
            }
            Action::Step { count } => {
                for _ in 0..count {
                    self.step();
                    self.settle();
                }
            }
            Action::Crash => {
                if self.faults.crash {
                    self.server.crash();
                }
            }
            Action::Tick { ms } => {
                self.now_ms += u64::from(ms);
                self.engine.handle_timeout(self.now_ms);
            }
        }
        self.settle();
    }

    /// The server behaves from now on: everything must complete, in bounded steps.
    fn drain(&mut self) {
        self.faults = Faults {
            never_match: self.faults.never_match,
            ..Faults::default()
        };
        self.settle();
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 5_000, "no progress: liveness");
            if !self.pending.is_empty() {
                self.execute(0);
            } else if !self.executed.is_empty() {
                self.deliver(0);
            } else if !self.checks.is_empty()
                || !self.truncations.is_empty()
                || !self.blocked.is_empty()
                || !self.reads.is_empty()
            {
                // Waiting for a back-off or an expiry.
                let deadline = self.engine.next_deadline_ms();
                if deadline.is_none() {
                    for f in 0..FILES {
                        let ext: Vec<_> = self
                            .engine
                            .extents(self.current[f])
                            .unwrap()
                            .iter()
                            .filter(|e| e.state != ExtentState::Clean)
                            .map(|e| (e.offset_bytes, e.data.len(), e.state, e.since_version))
                            .collect();
                        eprintln!("f{f}: {ext:?}");
                    }
                }
                assert!(
                    deadline.is_some(),
                    "stuck: nothing in flight, nothing scheduled; checks {:?}, blocked {}, reads {}",
                    self.checks.iter().map(|c| c.ticket).collect::<Vec<_>>(),
                    self.blocked.len(),
                    self.reads.len()
                );
                self.now_ms = self.now_ms.max(deadline.unwrap_or(0));
                self.engine.handle_timeout(self.now_ms);
            } else {
                break;
            }
            self.settle();
        }
    }

    /// At the end: a fsync of every file (twice if the first reports a failure) must succeed
    /// and leave the durable image equal to the model; a read of every file must match.
    fn finish(&mut self) {
        self.drain();
        for file in 0..FILES {
            for _ in 0..2 {
                self.sync(file, false);
                self.drain();
            }
            let open = self.current[file];
            let size = self.models[file].content.len();
            self.read(open, 0, size + 100);
            self.drain();
            let model = &self.models[file];
            let durable = self.server.file(&handle(&name(file))).durable.clone();
            for b in 0..size {
                if model.written[b] && !model.uncertain[b] {
                    assert_eq!(
                        durable.get(b),
                        Some(&model.content[b]),
                        "f{file} byte {b} at the end"
                    );
                }
            }
        }
        assert!(
            self.opens.values().all(|o| !o.unreported),
            "an error was never reported"
        );
    }
}

fn brief_op(op: &Op) -> String {
    match op {
        Op::Write {
            offset_bytes,
            data,
            stable,
        } => format!(
            "WRITE [{offset_bytes}, {}) {stable:?}",
            offset_bytes + data.len() as u64
        ),
        other => format!("{other:?}"),
    }
}

fn brief_reply(reply: &Reply) -> String {
    match reply {
        Reply::Read { data, eof, .. } => format!("READ {} bytes eof {eof}", data.len()),
        Reply::Write {
            count_bytes,
            committed,
            verf,
            ..
        } => format!("WRITE {count_bytes} {committed:?} {:?}", verf.0[7]),
        other => format!("{other:?}"),
    }
}

fn trace() -> bool {
    std::env::var_os("MODEL_TRACE").is_some()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model(
        faults in faults(),
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 1..120),
    ) {
        let mut h = Harness::new(faults, seed);
        for action in &actions {
            h.act(action);
        }
        h.finish();
    }
}
