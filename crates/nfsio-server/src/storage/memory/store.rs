//! The [`Storage`] trait over the memory store: attributes, lookups and listings, and the
//! namespace operations (CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK), each
//! checked with the kernel's rules written down (`crate::storage::rules`) and made of the
//! tree's primitives. READ, WRITE and COMMIT are the file content's (`content.rs`).

use std::ops::Bound;

use bytes::Bytes;
use nfsio_proto::nfs3::{
    CookieVerifier, Fattr, FileType, MknodData, Nfs3Status, NfsTime, Sattr, StableHow, WccData,
};

use super::MemStore;
use super::tree::{DOT_COOKIE, DOTDOT_COOKIE, Kind, ROOT_INO, err, new_dir};
use crate::storage::{
    Caller, CreateMode, Created, DirEntry, DirPage, FileId, FsStat, Granted, ReadOutcome, Storage,
    StoreError, StoreLimits, StoreResult, WriteOutcome, check_name, check_new_name, rules,
};

impl MemStore {
    /// Creates `name` in `dir` as a new node of `kind`, owned as the kernel would (see
    /// `rules::new_object`), then applies the rest of `attrs` as a SETATTR by its owner.
    fn create_node(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        kind: Kind,
        attrs: &Sattr,
        default_mode: u32,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(dir)?;
        let before = inner.fattr(dir.ino, fsid)?;
        rules::check_change_entries(caller, &before)?;
        match inner.child(dir, name) {
            Ok(_) => return err(Nfs3Status::Exist),
            Err(e) if e.status == Nfs3Status::NoEnt => {}
            Err(e) => return Err(e),
        }
        let is_dir = matches!(kind, Kind::Dir { .. });
        let (uid, gid, mode) =
            rules::new_object(caller, &before, attrs.mode.unwrap_or(default_mode), is_dir);
        let ino = inner.allocate(self.options.reuse_inodes, kind, mode, (uid, gid));
        inner.add_entry(dir.ino, name, ino)?;
        if is_dir {
            inner.set_link_count(dir.ino, 1);
        }
        // The rest applies as a SETATTR by the new owner (an owner chosen by root included).
        let mut rest = attrs.clone();
        rest.mode = None;
        if rest.size == Some(0) {
            rest.size = None;
        }
        if rest != Sattr::default() {
            let created = inner.fattr(ino, fsid)?;
            if let Some(mode) = rules::check_setattr(caller, &created, &rest)? {
                rest.mode = Some(mode);
            }
            inner.apply_sattr(ino, &rest, self.options.capacity_bytes)?;
        }
        Ok(Created {
            id: inner.id_of(ino)?,
            attr: inner.fattr(ino, fsid)?,
            dir_wcc: inner.wcc(&before, dir.ino, fsid),
        })
    }
}

impl Storage for MemStore {
    fn is_blocking(&self) -> bool {
        false
    }

    fn root(&self) -> FileId {
        FileId::new(ROOT_INO, 1)
    }

    fn fsid(&self) -> u64 {
        self.options.fsid
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits {
            link_max: u32::MAX,
            name_max: 255,
            max_file_bytes: self.options.capacity_bytes,
            time_delta: NfsTime {
                seconds: 0,
                nseconds: 1_000,
            },
        }
    }

    fn getattr(&self, id: FileId) -> StoreResult<Fattr> {
        let inner = self.lock();
        inner.node(id)?;
        inner.fattr(id.ino, self.options.fsid)
    }

    fn access(&self, caller: &Caller, id: FileId) -> StoreResult<(Granted, Fattr)> {
        let attr = self.getattr(id)?;
        Ok((rules::granted(caller, &attr), attr))
    }

    fn lookup(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<(FileId, Fattr)> {
        check_name(name)?;
        let inner = self.lock();
        let Kind::Dir { parent, .. } = &inner.node(dir)?.kind else {
            return err(Nfs3Status::NotDir);
        };
        rules::check_search(caller, &inner.fattr(dir.ino, self.options.fsid)?)?;
        let ino = match name {
            b"." => dir.ino,
            b".." => *parent,
            _ => inner.child(dir, name)?,
        };
        Ok((inner.id_of(ino)?, inner.fattr(ino, self.options.fsid)?))
    }

    fn setattr(
        &self,
        caller: &Caller,
        id: FileId,
        attrs: &Sattr,
        guard: Option<NfsTime>,
    ) -> StoreResult<WccData> {
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(id)?;
        let before = inner.fattr(id.ino, fsid)?;
        if guard.is_some_and(|ctime| ctime != before.ctime) {
            return err(Nfs3Status::NotSync);
        }
        let mut attrs = attrs.clone();
        if before.file_type == FileType::Symlink {
            // Linux has no mode on symbolic links.
            attrs.mode = None;
        }
        if let Some(mode) = rules::check_setattr(caller, &before, &attrs)? {
            attrs.mode = Some(mode);
        }
        inner.apply_sattr(id.ino, &attrs, self.options.capacity_bytes)?;
        Ok(inner.wcc(&before, id.ino, fsid))
    }

    fn read(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<ReadOutcome> {
        self.read_file(caller, id, offset, count)
    }

    fn write(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome> {
        self.write_file(caller, id, offset, data, stable)
    }

    fn commit(&self, caller: &Caller, id: FileId, offset: u64, count: u32) -> StoreResult<WccData> {
        self.commit_file(caller, id, offset, count)
    }

    fn create(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        mode: CreateMode<'_>,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let existing = {
            let inner = self.lock();
            inner.node(dir)?;
            rules::check_change_entries(caller, &inner.fattr(dir.ino, fsid)?)?;
            match inner.child(dir, name) {
                Ok(ino) => Some(ino),
                Err(e) if e.status == Nfs3Status::NoEnt => None,
                Err(e) => return Err(e),
            }
        };
        let file = |verf| Kind::File {
            volatile: Vec::new(),
            durable: Vec::new(),
            create_verf: verf,
        };
        match (mode, existing) {
            (CreateMode::Guarded(_), Some(_)) => err(Nfs3Status::Exist),
            (CreateMode::Unchecked(attrs), Some(ino)) => {
                let mut inner = self.lock();
                let before = inner.fattr(dir.ino, fsid)?;
                let node = inner
                    .nodes
                    .get(&ino)
                    .ok_or(StoreError::new(Nfs3Status::Stale))?;
                match node.kind {
                    Kind::File { .. } => {}
                    Kind::Dir { .. } => return err(Nfs3Status::IsDir),
                    _ => return err(Nfs3Status::Exist),
                }
                // Like knfsd: only the size applies to an existing file, as a truncation by
                // the caller.
                let mut size_only = Sattr {
                    size: attrs.size,
                    ..Sattr::default()
                };
                if size_only.size.is_some() {
                    let existing = inner.fattr(ino, fsid)?;
                    size_only.mode = rules::check_setattr(caller, &existing, &size_only)?;
                }
                inner.apply_sattr(ino, &size_only, self.options.capacity_bytes)?;
                Ok(Created {
                    id: inner.id_of(ino)?,
                    attr: inner.fattr(ino, fsid)?,
                    dir_wcc: inner.wcc(&before, dir.ino, fsid),
                })
            }
            (CreateMode::Exclusive(verf), Some(ino)) => {
                let inner = self.lock();
                let node = inner
                    .nodes
                    .get(&ino)
                    .ok_or(StoreError::new(Nfs3Status::Stale))?;
                match &node.kind {
                    Kind::File {
                        create_verf: Some(stored),
                        ..
                    } if *stored == verf.0 => {
                        let before = inner.fattr(dir.ino, fsid)?;
                        Ok(Created {
                            id: inner.id_of(ino)?,
                            attr: inner.fattr(ino, fsid)?,
                            dir_wcc: inner.wcc(&before, dir.ino, fsid),
                        })
                    }
                    _ => err(Nfs3Status::Exist),
                }
            }
            (CreateMode::Unchecked(attrs) | CreateMode::Guarded(attrs), None) => {
                self.create_node(caller, dir, name, file(None), attrs, 0o644)
            }
            (CreateMode::Exclusive(verf), None) => self.create_node(
                caller,
                dir,
                name,
                file(Some(verf.0)),
                &Sattr::default(),
                0o600,
            ),
        }
    }

    fn mkdir(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        let mut attrs = attrs.clone();
        attrs.size = None;
        self.create_node(caller, dir, name, new_dir(dir.ino), &attrs, 0o755)
    }

    fn symlink(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        if target.is_empty() {
            return err(Nfs3Status::Inval);
        }
        let attrs = Sattr {
            atime: attrs.atime,
            mtime: attrs.mtime,
            ..Sattr::default()
        };
        self.create_node(
            caller,
            dir,
            name,
            Kind::Symlink(Bytes::copy_from_slice(target)),
            &attrs,
            0o777,
        )
    }

    fn mknod(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        what: &MknodData,
    ) -> StoreResult<Created> {
        let (kind, attrs) = match what {
            MknodData::Fifo(attrs) => (Kind::Fifo, attrs),
            MknodData::Socket(attrs) => (Kind::Socket, attrs),
            MknodData::Char(_) | MknodData::Block(_) => return err(Nfs3Status::NotSupp),
            MknodData::Other(_) => return err(Nfs3Status::BadType),
        };
        let mut attrs = attrs.clone();
        attrs.size = None;
        self.create_node(caller, dir, name, kind, &attrs, 0o644)
    }

    fn remove(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(dir)?;
        let dir_attr = inner.fattr(dir.ino, fsid)?;
        rules::check_change_entries(caller, &dir_attr)?;
        let ino = inner.child(dir, name)?;
        rules::check_sticky(caller, &dir_attr, &inner.fattr(ino, fsid)?)?;
        if matches!(
            inner.nodes.get(&ino).map(|n| &n.kind),
            Some(Kind::Dir { .. })
        ) {
            return err(Nfs3Status::IsDir);
        }
        let before = inner.fattr(dir.ino, fsid)?;
        inner.remove_entry(dir.ino, name)?;
        inner.unlink(ino);
        Ok(inner.wcc(&before, dir.ino, fsid))
    }

    fn rmdir(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(dir)?;
        let dir_attr = inner.fattr(dir.ino, fsid)?;
        rules::check_change_entries(caller, &dir_attr)?;
        let ino = inner.child(dir, name)?;
        rules::check_sticky(caller, &dir_attr, &inner.fattr(ino, fsid)?)?;
        match inner.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::Dir { by_cookie, .. }) if by_cookie.is_empty() => {}
            Some(Kind::Dir { .. }) => return err(Nfs3Status::NotEmpty),
            _ => return err(Nfs3Status::NotDir),
        }
        let before = inner.fattr(dir.ino, fsid)?;
        inner.remove_entry(dir.ino, name)?;
        inner.unlink(ino);
        inner.set_link_count(dir.ino, -1);
        Ok(inner.wcc(&before, dir.ino, fsid))
    }

    fn rename(
        &self,
        caller: &Caller,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> StoreResult<(WccData, WccData)> {
        check_new_name(from_name)?;
        check_new_name(to_name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(from_dir)?;
        inner.node(to_dir)?;
        let from_before = inner.fattr(from_dir.ino, fsid)?;
        let to_before = inner.fattr(to_dir.ino, fsid)?;
        if !matches!(inner.node(to_dir)?.kind, Kind::Dir { .. }) {
            return err(Nfs3Status::NotDir);
        }
        rules::check_change_entries(caller, &from_before)?;
        rules::check_change_entries(caller, &to_before)?;
        let ino = inner.child(from_dir, from_name)?;
        rules::check_sticky(caller, &from_before, &inner.fattr(ino, fsid)?)?;
        if let Ok(target) = inner.child(to_dir, to_name) {
            rules::check_sticky(caller, &to_before, &inner.fattr(target, fsid)?)?;
        }
        let source_is_dir = matches!(
            inner.nodes.get(&ino).map(|n| &n.kind),
            Some(Kind::Dir { .. })
        );
        if source_is_dir {
            // A directory cannot move below itself.
            let mut cursor = to_dir.ino;
            loop {
                if cursor == ino {
                    return err(Nfs3Status::Inval);
                }
                match inner.nodes.get(&cursor).map(|n| &n.kind) {
                    Some(Kind::Dir { parent, .. }) if *parent != cursor => cursor = *parent,
                    _ => break,
                }
            }
        }
        let replaced = match inner.child(to_dir, to_name) {
            Ok(target) => Some(target),
            Err(e) if e.status == Nfs3Status::NoEnt => None,
            Err(e) => return Err(e),
        };
        if replaced == Some(ino) {
            // Both names are links to the same file: nothing to do.
            return Ok((
                inner.wcc(&from_before, from_dir.ino, fsid),
                inner.wcc(&to_before, to_dir.ino, fsid),
            ));
        }
        if let Some(target) = replaced {
            match (source_is_dir, inner.nodes.get(&target).map(|n| &n.kind)) {
                (true, Some(Kind::Dir { by_cookie, .. })) if !by_cookie.is_empty() => {
                    return err(Nfs3Status::NotEmpty);
                }
                (true, Some(Kind::Dir { .. })) | (false, Some(Kind::File { .. })) => {}
                (false, Some(Kind::Dir { .. })) => return err(Nfs3Status::IsDir),
                (true, _) => return err(Nfs3Status::NotDir),
                (false, _) => {}
            }
            inner.remove_entry(to_dir.ino, to_name)?;
            if source_is_dir {
                inner.set_link_count(to_dir.ino, -1);
            }
            inner.unlink(target);
        }
        inner.remove_entry(from_dir.ino, from_name)?;
        inner.add_entry(to_dir.ino, to_name, ino)?;
        if source_is_dir && from_dir.ino != to_dir.ino {
            inner.set_link_count(from_dir.ino, -1);
            inner.set_link_count(to_dir.ino, 1);
        }
        let now = inner.tick();
        if let Some(node) = inner.nodes.get_mut(&ino) {
            node.ctime = now;
            if let Kind::Dir { parent, .. } = &mut node.kind {
                *parent = to_dir.ino;
            }
        }
        Ok((
            inner.wcc(&from_before, from_dir.ino, fsid),
            inner.wcc(&to_before, to_dir.ino, fsid),
        ))
    }

    fn link(
        &self,
        caller: &Caller,
        id: FileId,
        dir: FileId,
        name: &[u8],
    ) -> StoreResult<(Fattr, WccData)> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        if matches!(inner.node(id)?.kind, Kind::Dir { .. }) {
            return err(Nfs3Status::IsDir);
        }
        if !matches!(inner.node(dir)?.kind, Kind::Dir { .. }) {
            return err(Nfs3Status::NotDir);
        }
        rules::check_change_entries(caller, &inner.fattr(dir.ino, fsid)?)?;
        rules::check_link(caller, &inner.fattr(id.ino, fsid)?)?;
        match inner.child(dir, name) {
            Ok(_) => return err(Nfs3Status::Exist),
            Err(e) if e.status == Nfs3Status::NoEnt => {}
            Err(e) => return Err(e),
        }
        let before = inner.fattr(dir.ino, fsid)?;
        inner.add_entry(dir.ino, name, id.ino)?;
        let now = inner.tick();
        let node = inner.node_mut(id)?;
        node.nlink = node.nlink.saturating_add(1);
        node.ctime = now;
        Ok((
            inner.fattr(id.ino, fsid)?,
            inner.wcc(&before, dir.ino, fsid),
        ))
    }

    fn readlink(&self, id: FileId) -> StoreResult<(Bytes, Fattr)> {
        let inner = self.lock();
        match &inner.node(id)?.kind {
            Kind::Symlink(target) => Ok((target.clone(), inner.fattr(id.ino, self.options.fsid)?)),
            _ => err(Nfs3Status::Inval),
        }
    }

    fn readdir(
        &self,
        caller: &Caller,
        dir: FileId,
        cookie: u64,
        _verifier: CookieVerifier,
        max_entries: usize,
        plus: bool,
    ) -> StoreResult<DirPage> {
        // Cookies are per-directory slot numbers that are never reused, so they stay valid
        // while the directory changes and the verifier is constant.
        let fsid = self.options.fsid;
        let inner = self.lock();
        let Kind::Dir {
            parent, by_cookie, ..
        } = &inner.node(dir)?.kind
        else {
            return err(Nfs3Status::NotDir);
        };
        let dir_attr = inner.fattr(dir.ino, fsid)?;
        rules::check_list(caller, &dir_attr)?;
        let plus = plus && rules::may(caller, &dir_attr, rules::MAY_EXEC);
        let mut candidates: Vec<(u64, Bytes, u64)> = Vec::new();
        if cookie < DOT_COOKIE {
            candidates.push((DOT_COOKIE, Bytes::from_static(b"."), dir.ino));
        }
        if cookie < DOTDOT_COOKIE {
            candidates.push((DOTDOT_COOKIE, Bytes::from_static(b".."), *parent));
        }
        let mut eof = true;
        let after = (Bound::Excluded(cookie.max(DOTDOT_COOKIE)), Bound::Unbounded);
        for (c, (name, ino)) in by_cookie.range(after) {
            if candidates.len() >= max_entries {
                eof = false;
                break;
            }
            candidates.push((*c, name.clone(), *ino));
        }
        if candidates.len() > max_entries {
            candidates.truncate(max_entries);
            eof = false;
        }
        let entries = candidates
            .into_iter()
            .map(|(cookie, name, ino)| DirEntry {
                fileid: ino,
                name,
                cookie,
                plus: if plus {
                    inner
                        .id_of(ino)
                        .ok()
                        .and_then(|id| Some((id, inner.fattr(ino, fsid).ok()?)))
                } else {
                    None
                },
            })
            .collect();
        Ok(DirPage {
            dir_attr: inner.fattr(dir.ino, fsid).ok(),
            verifier: CookieVerifier::default(),
            entries,
            eof,
        })
    }

    fn fsstat(&self, id: FileId) -> StoreResult<FsStat> {
        let inner = self.lock();
        inner.node(id)?;
        let capacity = self.options.capacity_bytes;
        let free = capacity.saturating_sub(inner.used_bytes);
        Ok(FsStat {
            total_bytes: capacity,
            free_bytes: free,
            avail_bytes: free,
            total_files: 1 << 20,
            free_files: (1u64 << 20).saturating_sub(inner.nodes.len() as u64),
            avail_files: (1u64 << 20).saturating_sub(inner.nodes.len() as u64),
        })
    }
}
