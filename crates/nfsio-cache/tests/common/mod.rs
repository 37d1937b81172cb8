//! A model NFSv3 server with a crash model, and a driver that runs the engine against it.
//!
//! The server keeps, per file, a volatile image (what READ sees) and a durable image (what
//! survives a crash). UNSTABLE WRITEs change only the volatile image; DATA_SYNC/FILE_SYNC
//! WRITEs and COMMIT make bytes durable; a crash replaces every volatile image by its durable
//! one and changes the verifier.

#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::Bytes;
use nfsio_cache::{Engine, EngineConfig, Event, FileId, Op, Reply, SyncTicket, Transmit};
use nfsio_proto::nfs3::{Fattr, FileHandle, NfsTime, StableHow, WriteVerifier};

/// One file on the model server.
#[derive(Debug, Clone, Default)]
pub struct ServerFile {
    pub volatile: Vec<u8>,
    pub durable: Vec<u8>,
    pub changes: u32,
}

/// The model server.
#[derive(Debug, Clone)]
pub struct Server {
    pub files: BTreeMap<Vec<u8>, ServerFile>,
    /// Server instance; the verifier derives from it.
    pub boot: u64,
    /// COMMIT answers a verifier different from WRITE's, always (a buggy server).
    pub commit_verf_never_matches: bool,
    pub writes: Vec<(u64, usize, StableHow)>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            files: BTreeMap::new(),
            boot: 1,
            commit_verf_never_matches: false,
            writes: Vec::new(),
        }
    }
}

pub fn handle(name: &str) -> FileHandle {
    FileHandle::from(name.as_bytes().to_vec())
}

impl Server {
    pub fn write_verf(&self) -> WriteVerifier {
        WriteVerifier(self.boot.to_be_bytes())
    }

    pub fn commit_verf(&self) -> WriteVerifier {
        if self.commit_verf_never_matches {
            WriteVerifier((self.boot ^ 0xdead_beef).to_be_bytes())
        } else {
            self.write_verf()
        }
    }

    pub fn file(&mut self, fh: &FileHandle) -> &mut ServerFile {
        self.files.entry(fh.as_bytes().to_vec()).or_default()
    }

    pub fn attrs(&mut self, fh: &FileHandle) -> Fattr {
        let file = self.file(fh);
        Fattr {
            size: file.volatile.len() as u64,
            mtime: NfsTime {
                seconds: file.changes,
                nseconds: 0,
            },
            ctime: NfsTime {
                seconds: file.changes,
                nseconds: 0,
            },
            ..Fattr::default()
        }
    }

    /// Applies `count` bytes of a WRITE; `durable` also writes them to stable storage.
    pub fn apply_write(&mut self, fh: &FileHandle, offset: u64, data: &[u8], durable: bool) {
        let file = self.file(fh);
        let end = offset as usize + data.len();
        if file.volatile.len() < end {
            file.volatile.resize(end, 0);
        }
        file.volatile[offset as usize..end].copy_from_slice(data);
        if durable {
            if file.durable.len() < end {
                file.durable.resize(end, 0);
            }
            file.durable[offset as usize..end].copy_from_slice(data);
        }
        file.changes += 1;
    }

    pub fn commit(&mut self, fh: &FileHandle) {
        let file = self.file(fh);
        file.durable = file.volatile.clone();
    }

    pub fn setattr(&mut self, fh: &FileHandle, size: u64) {
        let file = self.file(fh);
        file.volatile.resize(size as usize, 0);
        file.durable.resize(size as usize, 0);
        file.changes += 1;
    }

    pub fn read(&mut self, fh: &FileHandle, offset: u64, count: u32) -> (Bytes, bool) {
        let file = self.file(fh);
        let len = file.volatile.len() as u64;
        let start = offset.min(len);
        let end = (offset + u64::from(count)).min(len);
        let data = Bytes::copy_from_slice(&file.volatile[start as usize..end as usize]);
        (data, offset + u64::from(count) >= len)
    }

    pub fn crash(&mut self) {
        for file in self.files.values_mut() {
            file.volatile = file.durable.clone();
            file.changes += 1;
        }
        self.boot += 1;
    }

    /// Executes a call honestly (answers exactly the stability asked for).
    pub fn execute(&mut self, t: &Transmit) -> Reply {
        match &t.op {
            Op::Write {
                offset_bytes,
                data,
                stable,
            } => {
                self.writes.push((*offset_bytes, data.len(), *stable));
                self.apply_write(
                    &t.handle,
                    *offset_bytes,
                    &data.to_bytes(),
                    *stable != StableHow::Unstable,
                );
                Reply::Write {
                    count_bytes: data.len() as u32,
                    committed: *stable,
                    verf: self.write_verf(),
                    post_op_attrs: None,
                }
            }
            Op::Commit { .. } => {
                self.commit(&t.handle);
                Reply::Commit {
                    verf: self.commit_verf(),
                    post_op_attrs: None,
                }
            }
            Op::Read {
                offset_bytes,
                count_bytes,
            } => {
                let (data, eof) = self.read(&t.handle, *offset_bytes, *count_bytes);
                Reply::Read {
                    data,
                    eof,
                    post_op_attrs: None,
                }
            }
            Op::Setattr { size_bytes } => {
                self.setattr(&t.handle, *size_bytes);
                Reply::Setattr {
                    post_op_attrs: None,
                }
            }
        }
    }
}

/// The engine, the server, and the calls sent but not answered.
pub struct Driver {
    pub engine: Engine,
    pub server: Server,
    pub now_ms: u64,
    pub sent: Vec<Transmit>,
    pub events: Vec<Event>,
}

impl Driver {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            engine: Engine::new(config).expect("valid config"),
            server: Server::default(),
            now_ms: 0,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn open(&mut self, name: &str) -> FileId {
        let fh = handle(name);
        let attrs = self.server.attrs(&fh);
        self.engine.open(fh, &attrs, self.now_ms)
    }

    /// Collects every call the engine wants sent now.
    pub fn poll(&mut self) -> usize {
        let mut n = 0;
        while let Some(t) = self.engine.poll_transmit(self.now_ms) {
            self.sent.push(t);
            n += 1;
        }
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
        n
    }

    /// Takes the first sent call matching `pred`.
    pub fn take(&mut self, pred: impl Fn(&Transmit) -> bool) -> Transmit {
        let i = self
            .sent
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no such call in flight: {:#?}", self.sent));
        self.sent.remove(i)
    }

    pub fn take_write(&mut self) -> Transmit {
        self.take(|t| matches!(t.op, Op::Write { .. }))
    }

    pub fn take_commit(&mut self) -> Transmit {
        self.take(|t| matches!(t.op, Op::Commit { .. }))
    }

    pub fn has(&self, pred: impl Fn(&Transmit) -> bool) -> bool {
        self.sent.iter().any(pred)
    }

    pub fn has_write(&self) -> bool {
        self.has(|t| matches!(t.op, Op::Write { .. }))
    }

    pub fn has_commit(&self) -> bool {
        self.has(|t| matches!(t.op, Op::Commit { .. }))
    }

    /// Delivers `reply` for `t`.
    pub fn reply(&mut self, t: &Transmit, reply: Reply) {
        self.engine.on_reply(t.id, reply, self.now_ms);
        self.poll();
    }

    /// Executes `t` honestly on the server and delivers the reply.
    pub fn serve(&mut self, t: &Transmit) {
        let reply = self.server.execute(t);
        self.reply(t, reply);
    }

    /// Serves every call, oldest first, until none is in flight (bounded).
    pub fn run(&mut self) {
        self.poll();
        let mut steps = 0;
        while !self.sent.is_empty() {
            let t = self.sent.remove(0);
            self.serve(&t);
            steps += 1;
            assert!(steps < 100_000, "engine does not quiesce");
        }
    }

    pub fn sync_result(
        &mut self,
        ticket: SyncTicket,
    ) -> Option<Result<(), nfsio_cache::FileError>> {
        self.engine.poll_sync(ticket)
    }

    /// Runs until the ticket completes; returns its result.
    pub fn finish(&mut self, ticket: SyncTicket) -> Result<(), nfsio_cache::FileError> {
        for _ in 0..100_000 {
            if let Some(result) = self.engine.poll_sync(ticket) {
                return result;
            }
            self.poll();
            if self.sent.is_empty() {
                // Nothing in flight: maybe a back-off; move time on.
                self.now_ms += 60_000;
                self.engine.handle_timeout(self.now_ms);
                self.poll();
                if self.sent.is_empty() {
                    if let Some(result) = self.engine.poll_sync(ticket) {
                        return result;
                    }
                    panic!("ticket {ticket:?} can never complete: nothing in flight");
                }
                continue;
            }
            let t = self.sent.remove(0);
            self.serve(&t);
        }
        panic!("ticket {ticket:?} did not complete");
    }

    /// Reads `len` bytes (fewer only at the end of the file), serving READs as needed.
    pub fn read_all(&mut self, file: FileId, offset: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            if out.len() == len {
                return out;
            }
            let at = offset + out.len() as u64;
            match self
                .engine
                .read(file, at, len - out.len(), self.now_ms)
                .expect("read")
            {
                nfsio_cache::ReadOutcome::Data(data) if data.is_empty() => return out,
                nfsio_cache::ReadOutcome::Data(data) => out.extend_from_slice(&data),
                nfsio_cache::ReadOutcome::Wait(_) => self.run(),
            }
        }
        panic!("read never completes");
    }

    pub fn durable(&mut self, name: &str) -> Vec<u8> {
        self.server.file(&handle(name)).durable.clone()
    }

    pub fn volatile(&mut self, name: &str) -> Vec<u8> {
        self.server.file(&handle(name)).volatile.clone()
    }
}

pub fn write_ok(d: &mut Driver, file: FileId, offset: u64, data: &[u8]) {
    let outcome = d.engine.write(file, offset, data, d.now_ms).expect("write");
    assert_eq!(outcome, nfsio_cache::WriteOutcome::Accepted);
    d.poll();
}

/// A small configuration: 512-byte pages, 2 KiB WRITEs, a 64 KiB bound.
pub fn small_config() -> EngineConfig {
    EngineConfig {
        page_bytes: 512,
        wsize_bytes: 2048,
        rsize_bytes: 2048,
        max_inflight_writes: 8,
        max_inflight_reads: 4,
        memory_bound_bytes: 64 << 10,
        background_flush_bytes: 16 << 10,
        commit_threshold_bytes: 16 << 10,
        streaming_window_bytes: 16 << 10,
        readahead_initial_bytes: 1024,
        readahead_max_bytes: 8192,
        dirty_expire_ms: 30_000,
        retry_initial_ms: 100,
        retry_max_ms: 1_000,
        verifier_mismatch_limit: 3,
        bridge_gap_bytes: 0,
    }
}

pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            seed.wrapping_mul(31)
                .wrapping_add((i as u8).wrapping_mul(7))
                | 1
        })
        .collect()
}
