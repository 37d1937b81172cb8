//! The application's reads: answered from the cache (the application's own writes
//! included), or told to wait while READs fetch the range; sequential readers get readahead
//! that doubles.

use bytes::Bytes;

use super::Engine;
use crate::api::{Advice, FileError, FileId, ReadOutcome};
use crate::extents::Removal;
use crate::inode_id::InodeId;
use crate::ranges::RangeSet;

impl Engine {
    /// Reads up to `len_bytes` at `offset_bytes` from the cache (the application's own writes
    /// included). `Data` is the longest cached prefix of the range: empty only at or past the
    /// end of the file, shorter than asked when the file ends or the rest is not cached yet
    /// (call again for the rest). `Wait` when the first byte is not cached: READs fetch the
    /// range, and its bytes stay cached for this open until it reads again. Sequential readers
    /// get readahead that doubles up to `readahead_max_bytes`.
    pub fn read(
        &mut self,
        file: FileId,
        offset_bytes: u64,
        len_bytes: usize,
        now_ms: u64,
    ) -> Result<ReadOutcome, FileError> {
        self.advance(now_ms);
        let ino = self.open_file(file)?.ino;
        let req_end =
            offset_bytes
                .checked_add(len_bytes as u64)
                .ok_or(FileError::OffsetOverflow {
                    offset_bytes,
                    len_bytes: len_bytes as u64,
                })?;
        let previous_bytes = self.opens.get(&file).and_then(|open| open.ra_last_bytes);
        let window = self.update_readahead(file, offset_bytes, req_end);
        let advice = match self.opens.get_mut(&file) {
            Some(open) => {
                open.pin = None;
                open.advice
            }
            None => Advice::Normal,
        };
        if advice == Advice::NoReuse && previous_bytes != Some(offset_bytes) {
            self.drop_behind(ino, previous_bytes.unwrap_or(0), offset_bytes);
        }
        let size = self.store.inode(ino).size_bytes;
        let end = req_end.min(size);
        if offset_bytes >= end {
            self.after_input();
            return Ok(ReadOutcome::Data(Bytes::new()));
        }
        let gaps = self.store.inode(ino).extents.gaps(offset_bytes, end);
        if window > 0 {
            self.want(ino, end, end.saturating_add(window).min(size));
        }
        let cached_end = match gaps.first() {
            None => end,
            Some(&(gap_start, _)) => gap_start,
        };
        for &(start, stop) in &gaps {
            self.want(ino, start, stop);
        }
        if cached_end > offset_bytes {
            let data = self
                .store
                .inode(ino)
                .extents
                .assemble(offset_bytes, cached_end);
            self.after_input();
            return Ok(ReadOutcome::Data(data));
        }
        let inode = self.store.inode_mut(ino);
        let failed = inode
            .read_error
            .filter(|&(_, start, stop)| start < end && offset_bytes < stop);
        if let Some((status, _, _)) = failed {
            inode.read_error = None;
            self.after_input();
            return Err(FileError::Status(status));
        }
        let token = self.outbox.token();
        self.store.inode_mut(ino).read_waiters.push(token);
        if let Some(open) = self.opens.get_mut(&file) {
            open.pin = Some((offset_bytes, end));
        }
        self.activate(ino);
        self.after_input();
        Ok(ReadOutcome::Wait(token))
    }

    /// Gives `file`'s reader's advice on what it reads.
    pub fn advise(&mut self, file: FileId, advice: Advice) -> Result<(), FileError> {
        self.open_file(file)?;
        if let Some(open) = self.opens.get_mut(&file) {
            open.advice = advice;
        }
        Ok(())
    }

    /// Releases the clean extents of `ino` that end in `(from_bytes, to_bytes]`: what a
    /// no-reuse reader moved past since its last read (a range another open's reader waits
    /// for is spared). Only clean bytes go: they are on the server.
    fn drop_behind(&mut self, ino: InodeId, from_bytes: u64, to_bytes: u64) {
        let pins: Vec<(u64, u64)> = self
            .opens
            .values()
            .filter(|open| open.ino == ino)
            .filter_map(|open| open.pin)
            .collect();
        let passed: Vec<u64> = self
            .store
            .inode(ino)
            .extents
            .range(..to_bytes)
            .rev()
            .take_while(|(start, ext)| *start + ext.len() > from_bytes)
            .filter(|(start, ext)| {
                let end = *start + ext.len();
                ext.state().is_clean()
                    && end <= to_bytes
                    && !pins.iter().any(|&(a, b)| a < end && **start < b)
            })
            .map(|(start, _)| *start)
            .collect();
        for start in passed {
            self.store.remove(ino, start, Removal::Evicted);
        }
    }

    /// Updates the open's readahead state; returns the window to read ahead (0: none).
    fn update_readahead(&mut self, file: FileId, offset_bytes: u64, req_end: u64) -> u64 {
        let initial = self.config.readahead_initial_bytes;
        let max = self.config.readahead_max_bytes;
        let Some(open) = self.opens.get_mut(&file) else {
            return 0;
        };
        // Sequential: the read starts where the last one asked to end, or inside what the last
        // one asked for, past its start (it was answered short, with the cached prefix, and
        // this read goes on where that data ended).
        let sequential = match open.ra_last_bytes {
            Some(last) => last < offset_bytes && offset_bytes <= open.ra_next_bytes,
            None => offset_bytes == open.ra_next_bytes,
        };
        if open.ra_last_bytes == Some(offset_bytes) {
            // The same read again (after `Wait`): not a new access.
        } else if sequential {
            open.ra_window_bytes = if open.ra_window_bytes == 0 {
                initial
            } else {
                open.ra_window_bytes.saturating_mul(2)
            }
            .min(max);
        } else {
            open.ra_window_bytes = 0;
        }
        open.ra_last_bytes = Some(offset_bytes);
        open.ra_next_bytes = req_end;
        open.ra_window_bytes
    }

    /// Asks for `[start, end)` to be read (in whole pages), less what is cached or already
    /// being read.
    fn want(&mut self, ino: InodeId, start: u64, end: u64) {
        let page = u64::from(self.config.page_bytes);
        let inode = self.store.inode(ino);
        let start = start / page * page;
        let end = end
            .div_ceil(page)
            .saturating_mul(page)
            .min(inode.size_bytes);
        if start >= end {
            return;
        }
        let in_flight = self.calls.read_ranges(&inode.calls);
        let mut wanted = Vec::new();
        for (a, b) in inode.extents.gaps(start, end) {
            let mut pieces = RangeSet::new();
            pieces.insert(a, b);
            for &(ra, rb) in &in_flight {
                pieces.remove(ra, rb);
            }
            wanted.extend(pieces.iter());
        }
        let inode = self.store.inode_mut(ino);
        for (a, b) in wanted {
            inode.read_wanted.insert(a, b);
        }
        if !inode.read_wanted.is_empty() {
            self.activate(ino);
        }
    }
}
