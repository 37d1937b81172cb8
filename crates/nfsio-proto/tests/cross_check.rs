//! Cross-checks our encodings against an independent implementation, the `nfs3_types` crate:
//! messages encoded by us are decoded by it and compared field by field, and messages encoded
//! by it are decoded by us.
//!
//! The field mappings below are written by hand from RFC 1813 / RFC 1833, so a field encoded in
//! the wrong order or with the wrong width on either side shows up as a mismatch.

use std::borrow::Cow;
use std::io::Cursor;

use bytes::Bytes;
use nfs3_types::mount as them_mount;
use nfs3_types::nfs3 as them;
use nfs3_types::portmap as them_pmap;
use nfs3_types::xdr_codec::{List, Opaque, Pack, Unpack, Void};
use nfsio_proto::nfs3::*;
use nfsio_proto::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use nfsio_proto::{mount, portmap};

// ---------------------------------------------------------------------------------------------
// Plumbing.

/// Our encoding, joined from its segments.
fn ours<T: XdrEncode>(value: &T) -> Vec<u8> {
    let mut enc = XdrEncoder::new();
    value.encode(&mut enc);
    enc.finish()
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect()
}

/// Decodes with nfs3_types, which must consume every byte.
fn theirs_decode<T: Unpack>(bytes: &[u8]) -> T {
    let mut cursor = Cursor::new(bytes);
    let (value, len) = T::unpack(&mut cursor).expect("nfs3_types decodes our encoding");
    assert_eq!(len, bytes.len(), "nfs3_types consumed the whole message");
    value
}

/// Encodes with nfs3_types.
fn theirs<T: Pack>(value: &T) -> Bytes {
    let mut out = Vec::new();
    let len = value.pack(&mut out).expect("nfs3_types encodes");
    assert_eq!(len, out.len());
    assert_eq!(value.packed_size(), out.len());
    Bytes::from(out)
}

/// Decodes with us, which must consume every byte.
fn ours_decode<T: XdrDecode>(bytes: Bytes) -> T {
    let mut dec = XdrDecoder::new(bytes);
    let value = T::decode(&mut dec).expect("we decode nfs3_types' encoding");
    dec.finish().expect("we consumed the whole message");
    value
}

fn opaque(bytes: &[u8]) -> Opaque<'static> {
    Opaque::owned(bytes.to_vec())
}

fn option<T: Pack + Unpack>(value: Option<T>) -> them::Nfs3Option<T> {
    match value {
        Some(value) => them::Nfs3Option::Some(value),
        None => them::Nfs3Option::None,
    }
}

fn unoption<T: Pack + Unpack>(value: them::Nfs3Option<T>) -> Option<T> {
    match value {
        them::Nfs3Option::Some(value) => Some(value),
        them::Nfs3Option::None => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Field mappings, both ways.

fn fh_to(fh: &FileHandle) -> them::nfs_fh3 {
    them::nfs_fh3 {
        data: opaque(&fh.0),
    }
}

fn fh_from(fh: &them::nfs_fh3) -> FileHandle {
    FileHandle(Bytes::copy_from_slice(&fh.data))
}

fn time_to(t: NfsTime) -> them::nfstime3 {
    them::nfstime3 {
        seconds: t.seconds,
        nseconds: t.nseconds,
    }
}

fn time_from(t: them::nfstime3) -> NfsTime {
    NfsTime {
        seconds: t.seconds,
        nseconds: t.nseconds,
    }
}

fn ftype_to(t: FileType) -> them::ftype3 {
    match t {
        FileType::Regular => them::ftype3::NF3REG,
        FileType::Directory => them::ftype3::NF3DIR,
        FileType::Block => them::ftype3::NF3BLK,
        FileType::Character => them::ftype3::NF3CHR,
        FileType::Symlink => them::ftype3::NF3LNK,
        FileType::Socket => them::ftype3::NF3SOCK,
        FileType::Fifo => them::ftype3::NF3FIFO,
    }
}

fn ftype_from(t: them::ftype3) -> FileType {
    match t {
        them::ftype3::NF3REG => FileType::Regular,
        them::ftype3::NF3DIR => FileType::Directory,
        them::ftype3::NF3BLK => FileType::Block,
        them::ftype3::NF3CHR => FileType::Character,
        them::ftype3::NF3LNK => FileType::Symlink,
        them::ftype3::NF3SOCK => FileType::Socket,
        them::ftype3::NF3FIFO => FileType::Fifo,
    }
}

fn fattr_to(a: &Fattr) -> them::fattr3 {
    them::fattr3 {
        type_: ftype_to(a.file_type),
        mode: a.mode,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        used: a.used,
        rdev: them::specdata3 {
            specdata1: a.rdev.major,
            specdata2: a.rdev.minor,
        },
        fsid: a.fsid,
        fileid: a.fileid,
        atime: time_to(a.atime),
        mtime: time_to(a.mtime),
        ctime: time_to(a.ctime),
    }
}

fn fattr_from(a: &them::fattr3) -> Fattr {
    Fattr {
        file_type: ftype_from(a.type_),
        mode: a.mode,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        used: a.used,
        rdev: SpecData {
            major: a.rdev.specdata1,
            minor: a.rdev.specdata2,
        },
        fsid: a.fsid,
        fileid: a.fileid,
        atime: time_from(a.atime),
        mtime: time_from(a.mtime),
        ctime: time_from(a.ctime),
    }
}

fn post_op_attr_to(a: &PostOpAttr) -> them::post_op_attr {
    option(a.as_ref().map(fattr_to))
}

fn post_op_attr_from(a: &them::post_op_attr) -> PostOpAttr {
    match a {
        them::Nfs3Option::Some(a) => Some(fattr_from(a)),
        them::Nfs3Option::None => None,
    }
}

fn wcc_to(w: &WccData) -> them::wcc_data {
    them::wcc_data {
        before: option(w.before.map(|b| them::wcc_attr {
            size: b.size,
            mtime: time_to(b.mtime),
            ctime: time_to(b.ctime),
        })),
        after: post_op_attr_to(&w.after),
    }
}

fn wcc_from(w: &them::wcc_data) -> WccData {
    WccData {
        before: match w.before {
            them::Nfs3Option::Some(b) => Some(WccAttr {
                size: b.size,
                mtime: time_from(b.mtime),
                ctime: time_from(b.ctime),
            }),
            them::Nfs3Option::None => None,
        },
        after: post_op_attr_from(&w.after),
    }
}

fn set_atime_from(t: them::set_atime) -> SetTime {
    match t {
        them::set_atime::DONT_CHANGE => SetTime::DontChange,
        them::set_atime::SET_TO_SERVER_TIME => SetTime::ServerTime,
        them::set_atime::SET_TO_CLIENT_TIME(t) => SetTime::ClientTime(time_from(t)),
    }
}

fn set_mtime_from(t: them::set_mtime) -> SetTime {
    match t {
        them::set_mtime::DONT_CHANGE => SetTime::DontChange,
        them::set_mtime::SET_TO_SERVER_TIME => SetTime::ServerTime,
        them::set_mtime::SET_TO_CLIENT_TIME(t) => SetTime::ClientTime(time_from(t)),
    }
}

fn sattr_to(s: &Sattr) -> them::sattr3 {
    them::sattr3 {
        mode: option(s.mode),
        uid: option(s.uid),
        gid: option(s.gid),
        size: option(s.size),
        atime: match s.atime {
            SetTime::DontChange => them::set_atime::DONT_CHANGE,
            SetTime::ServerTime => them::set_atime::SET_TO_SERVER_TIME,
            SetTime::ClientTime(t) => them::set_atime::SET_TO_CLIENT_TIME(time_to(t)),
        },
        mtime: match s.mtime {
            SetTime::DontChange => them::set_mtime::DONT_CHANGE,
            SetTime::ServerTime => them::set_mtime::SET_TO_SERVER_TIME,
            SetTime::ClientTime(t) => them::set_mtime::SET_TO_CLIENT_TIME(time_to(t)),
        },
    }
}

fn sattr_from(s: &them::sattr3) -> Sattr {
    Sattr {
        mode: unoption(s.mode),
        uid: unoption(s.uid),
        gid: unoption(s.gid),
        size: unoption(s.size),
        atime: set_atime_from(s.atime),
        mtime: set_mtime_from(s.mtime),
    }
}

fn dirop_from(d: &them::diropargs3<'_>) -> DirOpArgs {
    DirOpArgs {
        dir: fh_from(&d.dir),
        name: Bytes::copy_from_slice(d.name.as_ref()),
    }
}

fn dirop_to(d: &DirOpArgs) -> them::diropargs3<'static> {
    them::diropargs3 {
        dir: fh_to(&d.dir),
        name: them::filename3(opaque(&d.name)),
    }
}

fn stable_from(s: them::stable_how) -> StableHow {
    match s {
        them::stable_how::UNSTABLE => StableHow::Unstable,
        them::stable_how::DATA_SYNC => StableHow::DataSync,
        them::stable_how::FILE_SYNC => StableHow::FileSync,
    }
}

fn status_from(s: them::nfsstat3) -> Nfs3Status {
    Nfs3Status::from_u32(s as u32)
}

/// Converts nfs3_types' result into ours with the arms' mappings.
fn res_from<T, E, OurT, OurF>(
    res: &them::Nfs3Result<T, E>,
    ok: impl FnOnce(&T) -> OurT,
    fail: impl FnOnce(&E) -> OurF,
) -> NfsRes<OurT, OurF> {
    match res {
        them::Nfs3Result::Ok(t) => NfsRes::Ok(ok(t)),
        them::Nfs3Result::Err((status, e)) => NfsRes::Fail {
            status: status_from(*status),
            fail: fail(e),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Sample values.

fn fh(seed: u8, len: usize) -> FileHandle {
    FileHandle(Bytes::from(
        (0..len)
            .map(|i| seed.wrapping_add(i as u8))
            .collect::<Vec<_>>(),
    ))
}

fn fattr(seed: u32) -> Fattr {
    Fattr {
        file_type: FileType::Regular,
        mode: 0o100644 ^ seed,
        nlink: 1 + seed,
        uid: 1000 + seed,
        gid: 2000 + seed,
        size: 0x1_0000_0001 + u64::from(seed),
        used: 0x2_0000_0002,
        rdev: SpecData {
            major: 8,
            minor: seed,
        },
        fsid: 0xdead_beef_0000_0000 | u64::from(seed),
        fileid: 0x1234_5678_9abc_def0 ^ u64::from(seed),
        atime: NfsTime {
            seconds: 1_700_000_000,
            nseconds: 1,
        },
        mtime: NfsTime {
            seconds: 1_700_000_001,
            nseconds: 999_999_999,
        },
        ctime: NfsTime {
            seconds: u32::MAX,
            nseconds: seed,
        },
    }
}

fn wcc(seed: u32) -> WccData {
    WccData {
        before: Some(WccAttr {
            size: u64::from(seed) << 20,
            mtime: NfsTime {
                seconds: seed,
                nseconds: 7,
            },
            ctime: NfsTime {
                seconds: seed + 1,
                nseconds: 8,
            },
        }),
        after: Some(fattr(seed)),
    }
}

fn name(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Ours → theirs.

#[test]
fn write_args_ours_to_theirs() {
    for len in [0, 5, 4096 + 3] {
        let args = WriteArgs {
            file: fh(1, 32),
            offset: 0x0123_4567_89ab_cdef,
            count: len as u32,
            stable: StableHow::FileSync,
            data: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
        };
        let t: them::WRITE3args<'static> = theirs_decode(&ours(&args));
        assert_eq!(fh_from(&t.file), args.file);
        assert_eq!(t.offset, args.offset);
        assert_eq!(t.count, args.count);
        assert_eq!(t.stable, them::stable_how::FILE_SYNC);
        assert_eq!(&t.data[..], &args.data[..]);
    }
}

#[test]
fn read_res_ours_to_theirs() {
    let res: ReadRes = NfsRes::Ok(ReadResOk {
        file_attributes: Some(fattr(3)),
        count: 2051,
        eof: true,
        data: Bytes::from(vec![0x5a; 2051]),
    });
    let t: them::READ3res<'static> = theirs_decode(&ours(&res));
    let them::Nfs3Result::Ok(ok) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(post_op_attr_from(&ok.file_attributes), Some(fattr(3)));
    assert_eq!(ok.count, 2051);
    assert!(ok.eof);
    assert_eq!(&ok.data[..], &[0x5a; 2051][..]);

    let res: ReadRes = NfsRes::fail(
        Nfs3Status::Io,
        ReadResFail {
            file_attributes: None,
        },
    );
    let t: them::READ3res<'static> = theirs_decode(&ours(&res));
    assert!(matches!(
        t,
        them::Nfs3Result::Err((
            them::nfsstat3::NFS3ERR_IO,
            them::READ3resfail {
                file_attributes: them::Nfs3Option::None
            }
        ))
    ));
}

#[test]
fn lookup_ours_to_theirs() {
    let args = LookupArgs {
        what: DirOpArgs {
            dir: fh(9, 64),
            name: name("a name of odd length"),
        },
    };
    let t: them::LOOKUP3args<'static> = theirs_decode(&ours(&args));
    assert_eq!(dirop_from(&t.what), args.what);

    let res: LookupRes = NfsRes::Ok(LookupResOk {
        object: fh(2, 28),
        obj_attributes: Some(fattr(1)),
        dir_attributes: None,
    });
    let t: them::LOOKUP3res = theirs_decode(&ours(&res));
    let back = res_from(
        &t,
        |ok| LookupResOk {
            object: fh_from(&ok.object),
            obj_attributes: post_op_attr_from(&ok.obj_attributes),
            dir_attributes: post_op_attr_from(&ok.dir_attributes),
        },
        |fail| LookupResFail {
            dir_attributes: post_op_attr_from(&fail.dir_attributes),
        },
    );
    assert_eq!(back, res);

    let res: LookupRes = NfsRes::fail(
        Nfs3Status::NoEnt,
        LookupResFail {
            dir_attributes: Some(fattr(4)),
        },
    );
    let t: them::LOOKUP3res = theirs_decode(&ours(&res));
    let back = res_from(
        &t,
        |_| unreachable!(),
        |fail| LookupResFail {
            dir_attributes: post_op_attr_from(&fail.dir_attributes),
        },
    );
    assert_eq!(back, res);
}

#[test]
fn readdirplus_res_ours_to_theirs() {
    let entries: Vec<EntryPlus> = (0..5u32)
        .map(|i| EntryPlus {
            fileid: 1000 + u64::from(i),
            name: Bytes::from(format!("entry-{}", "x".repeat(i as usize))),
            cookie: u64::from(i) << 40 | 7,
            name_attributes: (i != 2).then(|| fattr(i)),
            name_handle: (i != 3).then(|| fh(i as u8, 8 * i as usize)),
        })
        .collect();
    let res: ReaddirplusRes = NfsRes::Ok(ReaddirplusResOk {
        dir_attributes: Some(fattr(77)),
        cookieverf: CookieVerifier(*b"cookieV!"),
        entries: entries.clone(),
        eof: true,
    });
    let t: them::READDIRPLUS3res<'static> = theirs_decode(&ours(&res));
    let them::Nfs3Result::Ok(ok) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(post_op_attr_from(&ok.dir_attributes), Some(fattr(77)));
    assert_eq!(ok.cookieverf.0, *b"cookieV!");
    assert!(ok.reply.eof);
    let back: Vec<EntryPlus> = ok
        .reply
        .entries
        .0
        .iter()
        .map(|e| EntryPlus {
            fileid: e.fileid,
            name: Bytes::copy_from_slice(e.name.as_ref()),
            cookie: e.cookie,
            name_attributes: post_op_attr_from(&e.name_attributes),
            name_handle: match &e.name_handle {
                them::Nfs3Option::Some(fh) => Some(fh_from(fh)),
                them::Nfs3Option::None => None,
            },
        })
        .collect();
    assert_eq!(back, entries);
}

#[test]
fn readdir_res_ours_to_theirs() {
    let entries: Vec<Entry> = ["."; 1]
        .iter()
        .chain(["..", "abc", "abcd", "abcde"].iter())
        .enumerate()
        .map(|(i, n)| Entry {
            fileid: i as u64,
            name: name(n),
            cookie: i as u64 + 1,
        })
        .collect();
    let res: ReaddirRes = NfsRes::Ok(ReaddirResOk {
        dir_attributes: None,
        cookieverf: CookieVerifier([1; 8]),
        entries: entries.clone(),
        eof: false,
    });
    let t: them::READDIR3res<'static> = theirs_decode(&ours(&res));
    let them::Nfs3Result::Ok(ok) = &t else {
        panic!("{t:?}")
    };
    assert!(!ok.reply.eof);
    let back: Vec<Entry> = ok
        .reply
        .entries
        .0
        .iter()
        .map(|e| Entry {
            fileid: e.fileid,
            name: Bytes::copy_from_slice(e.name.as_ref()),
            cookie: e.cookie,
        })
        .collect();
    assert_eq!(back, entries);
}

#[test]
fn fsinfo_res_ours_to_theirs() {
    let ok = FsinfoResOk {
        obj_attributes: Some(fattr(5)),
        rtmax: 1 << 20,
        rtpref: 1 << 19,
        rtmult: 4096,
        wtmax: 1 << 21,
        wtpref: 1 << 18,
        wtmult: 512,
        dtpref: 8192,
        maxfilesize: u64::MAX - 1,
        time_delta: NfsTime {
            seconds: 0,
            nseconds: 1,
        },
        properties: fsf::LINK | fsf::SYMLINK | fsf::HOMOGENEOUS | fsf::CANSETTIME,
    };
    let t: them::FSINFO3res = theirs_decode(&ours(&FsinfoRes::Ok(ok.clone())));
    let back = res_from(
        &t,
        |t| FsinfoResOk {
            obj_attributes: post_op_attr_from(&t.obj_attributes),
            rtmax: t.rtmax,
            rtpref: t.rtpref,
            rtmult: t.rtmult,
            wtmax: t.wtmax,
            wtpref: t.wtpref,
            wtmult: t.wtmult,
            dtpref: t.dtpref,
            maxfilesize: t.maxfilesize,
            time_delta: time_from(t.time_delta),
            properties: t.properties,
        },
        |_| unreachable!(),
    );
    assert_eq!(back, NfsRes::Ok(ok));
    assert_eq!(
        fsf::LINK | fsf::SYMLINK | fsf::HOMOGENEOUS | fsf::CANSETTIME,
        them::FSF3_LINK | them::FSF3_SYMLINK | them::FSF3_HOMOGENEOUS | them::FSF3_CANSETTIME
    );
}

#[test]
fn fsstat_and_pathconf_res_ours_to_theirs() {
    let ok = FsstatResOk {
        obj_attributes: None,
        tbytes: 1,
        fbytes: 2,
        abytes: 3,
        tfiles: 4,
        ffiles: 5,
        afiles: 6,
        invarsec: 7,
    };
    let t: them::FSSTAT3res = theirs_decode(&ours(&FsstatRes::Ok(ok.clone())));
    let them::Nfs3Result::Ok(t) = t else { panic!() };
    assert_eq!(
        [t.tbytes, t.fbytes, t.abytes, t.tfiles, t.ffiles, t.afiles],
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(t.invarsec, 7);

    let ok = PathconfResOk {
        obj_attributes: Some(fattr(0)),
        linkmax: 32000,
        name_max: 255,
        no_trunc: true,
        chown_restricted: false,
        case_insensitive: false,
        case_preserving: true,
    };
    let t: them::PATHCONF3res = theirs_decode(&ours(&PathconfRes::Ok(ok)));
    let them::Nfs3Result::Ok(t) = t else { panic!() };
    assert_eq!(post_op_attr_from(&t.obj_attributes), Some(fattr(0)));
    assert_eq!((t.linkmax, t.name_max), (32000, 255));
    assert_eq!(
        [
            t.no_trunc,
            t.chown_restricted,
            t.case_insensitive,
            t.case_preserving
        ],
        [true, false, false, true]
    );
}

#[test]
fn getattr_res_ours_to_theirs() {
    let res: GetattrRes = NfsRes::Ok(GetattrResOk {
        obj_attributes: fattr(11),
    });
    let t: them::GETATTR3res = theirs_decode(&ours(&res));
    let them::Nfs3Result::Ok(ok) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(fattr_from(&ok.obj_attributes), fattr(11));

    // The void fail arm: only the status.
    let res: GetattrRes = NfsRes::fail(Nfs3Status::Stale, ());
    let t: them::GETATTR3res = theirs_decode(&ours(&res));
    assert!(matches!(
        t,
        them::Nfs3Result::Err((them::nfsstat3::NFS3ERR_STALE, Void))
    ));
}

#[test]
fn create_args_all_modes_ours_to_theirs() {
    let sattr = Sattr {
        mode: Some(0o640),
        uid: Some(7),
        gid: None,
        size: Some(0),
        atime: SetTime::ServerTime,
        mtime: SetTime::ClientTime(NfsTime {
            seconds: 10,
            nseconds: 20,
        }),
    };
    let hows = [
        CreateHow::Unchecked(sattr.clone()),
        CreateHow::Guarded(sattr.clone()),
        CreateHow::Exclusive(CreateVerifier(*b"exclusiv")),
    ];
    for how in hows {
        let args = CreateArgs {
            where_: DirOpArgs {
                dir: fh(0x40, 16),
                name: name("new-file"),
            },
            how: how.clone(),
        };
        let t: them::CREATE3args<'static> = theirs_decode(&ours(&args));
        assert_eq!(dirop_from(&t.where_), args.where_);
        let back = match &t.how {
            them::createhow3::UNCHECKED(s) => CreateHow::Unchecked(sattr_from(s)),
            them::createhow3::GUARDED(s) => CreateHow::Guarded(sattr_from(s)),
            them::createhow3::EXCLUSIVE(v) => CreateHow::Exclusive(CreateVerifier(v.0)),
        };
        assert_eq!(back, how);
    }
}

#[test]
fn setattr_mknod_symlink_rename_args_ours_to_theirs() {
    let args = SetattrArgs {
        object: fh(3, 12),
        new_attributes: Sattr {
            size: Some(1 << 35),
            atime: SetTime::ClientTime(NfsTime {
                seconds: 1,
                nseconds: 2,
            }),
            ..Sattr::default()
        },
        guard: Some(NfsTime {
            seconds: 3,
            nseconds: 4,
        }),
    };
    let t: them::SETATTR3args = theirs_decode(&ours(&args));
    assert_eq!(fh_from(&t.object), args.object);
    assert_eq!(sattr_from(&t.new_attributes), args.new_attributes);
    assert_eq!(unoption(t.guard).map(time_from), args.guard);

    let where_ = DirOpArgs {
        dir: fh(5, 5),
        name: name("dev"),
    };
    for what in [
        MknodData::Char(DeviceData {
            dev_attributes: Sattr {
                mode: Some(0o600),
                ..Sattr::default()
            },
            spec: SpecData { major: 1, minor: 3 },
        }),
        MknodData::Block(DeviceData::default()),
        MknodData::Fifo(Sattr::default()),
        MknodData::Socket(Sattr {
            uid: Some(1),
            ..Sattr::default()
        }),
    ] {
        let args = MknodArgs {
            where_: where_.clone(),
            what: what.clone(),
        };
        let t: them::MKNOD3args<'static> = theirs_decode(&ours(&args));
        assert_eq!(dirop_from(&t.where_), where_);
        let device = |d: &them::devicedata3| DeviceData {
            dev_attributes: sattr_from(&d.dev_attributes),
            spec: SpecData {
                major: d.spec.specdata1,
                minor: d.spec.specdata2,
            },
        };
        let back = match &t.what {
            them::mknoddata3::NF3CHR(d) => MknodData::Char(device(d)),
            them::mknoddata3::NF3BLK(d) => MknodData::Block(device(d)),
            them::mknoddata3::NF3SOCK(s) => MknodData::Socket(sattr_from(s)),
            them::mknoddata3::NF3FIFO(s) => MknodData::Fifo(sattr_from(s)),
            them::mknoddata3::default => panic!("default arm"),
        };
        assert_eq!(back, what);
    }

    let args = SymlinkArgs {
        where_: where_.clone(),
        symlink: SymlinkData {
            symlink_attributes: Sattr::default(),
            symlink_data: name("../../target/of/the/link"),
        },
    };
    let t: them::SYMLINK3args<'static> = theirs_decode(&ours(&args));
    assert_eq!(dirop_from(&t.where_), where_);
    assert_eq!(
        t.symlink.symlink_data.as_ref(),
        &b"../../target/of/the/link"[..]
    );

    let args = RenameArgs {
        from: where_.clone(),
        to: DirOpArgs {
            dir: fh(6, 6),
            name: name("renamed"),
        },
    };
    let t: them::RENAME3args<'static, 'static> = theirs_decode(&ours(&args));
    assert_eq!(dirop_from(&t.from), args.from);
    assert_eq!(dirop_from(&t.to), args.to);
}

#[test]
fn write_and_commit_res_ours_to_theirs() {
    let res: WriteRes = NfsRes::Ok(WriteResOk {
        file_wcc: wcc(1),
        count: 65536,
        committed: StableHow::DataSync,
        verf: WriteVerifier(*b"bootverf"),
    });
    let t: them::WRITE3res = theirs_decode(&ours(&res));
    let back = res_from(
        &t,
        |t| WriteResOk {
            file_wcc: wcc_from(&t.file_wcc),
            count: t.count,
            committed: stable_from(t.committed),
            verf: WriteVerifier(t.verf.0),
        },
        |t| WriteResFail {
            file_wcc: wcc_from(&t.file_wcc),
        },
    );
    assert_eq!(back, res);

    for res in [
        CommitRes::Ok(CommitResOk {
            file_wcc: wcc(9),
            verf: WriteVerifier([0xff; 8]),
        }),
        CommitRes::fail(
            Nfs3Status::Jukebox,
            CommitResFail {
                file_wcc: WccData::default(),
            },
        ),
    ] {
        let t: them::COMMIT3res = theirs_decode(&ours(&res));
        let back = res_from(
            &t,
            |t| CommitResOk {
                file_wcc: wcc_from(&t.file_wcc),
                verf: WriteVerifier(t.verf.0),
            },
            |t| CommitResFail {
                file_wcc: wcc_from(&t.file_wcc),
            },
        );
        assert_eq!(back, res);
    }
}

#[test]
fn mount_mnt_and_export_ours_to_theirs() {
    let args = mount::MntArgs {
        dirpath: name("/export/home"),
    };
    let t: them_mount::dirpath<'static> = theirs_decode(&ours(&args));
    assert_eq!(&t.0[..], b"/export/home");

    let res = mount::MntRes::Ok {
        fhandle: fh(0x11, 20),
        auth_flavors: vec![1, 0, 390003],
    };
    let t: them_mount::mountres3<'static> = theirs_decode(&ours(&res));
    let them_mount::mountres3::Ok(ok) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(&ok.fhandle.0[..], &fh(0x11, 20).0[..]);
    assert_eq!(ok.auth_flavors, vec![1, 0, 390003]);

    let res = mount::MntRes::Fail(mount::MountStatus::Acces);
    let t: them_mount::mountres3<'static> = theirs_decode(&ours(&res));
    assert!(matches!(
        t,
        them_mount::mountres3::Err(them_mount::mountstat3::MNT3ERR_ACCES)
    ));

    let exports = mount::ExportList(vec![
        mount::ExportNode {
            dir: name("/a"),
            groups: vec![name("10.0.0.0/8"), name("host.example")],
        },
        mount::ExportNode {
            dir: name("/bb"),
            groups: vec![],
        },
        mount::ExportNode {
            dir: name("/ccc"),
            groups: vec![name("*")],
        },
    ]);
    let t: them_mount::exports<'static, 'static> = theirs_decode(&ours(&exports));
    let back: Vec<mount::ExportNode> =
        t.0.iter()
            .map(|node| mount::ExportNode {
                dir: Bytes::copy_from_slice(&node.ex_dir.0),
                groups: node
                    .ex_groups
                    .0
                    .iter()
                    .map(|g| Bytes::copy_from_slice(&g.0))
                    .collect(),
            })
            .collect();
    assert_eq!(back, exports.0);

    let dump = mount::MountList(vec![
        mount::MountEntry {
            hostname: name("client1"),
            directory: name("/a"),
        },
        mount::MountEntry {
            hostname: name("c2"),
            directory: name("/bb"),
        },
    ]);
    let t: them_mount::mountlist<'static, 'static> = theirs_decode(&ours(&dump));
    let back: Vec<mount::MountEntry> =
        t.0.iter()
            .map(|m| mount::MountEntry {
                hostname: Bytes::copy_from_slice(&m.ml_hostname.0),
                directory: Bytes::copy_from_slice(&m.ml_directory.0),
            })
            .collect();
    assert_eq!(back, dump.0);
}

#[test]
fn portmap_ours_to_theirs() {
    let mapping = portmap::Mapping {
        prog: nfsio_proto::nfs3::PROGRAM,
        vers: 3,
        prot: portmap::IPPROTO_TCP,
        port: 2049,
    };
    let t: them_pmap::mapping = theirs_decode(&ours(&portmap::PortmapCall::Getport(mapping)));
    assert_eq!(
        (t.prog, t.vers, t.prot, t.port),
        (100003, 3, them_pmap::IPPROTO_TCP, 2049)
    );

    let list = portmap::MappingList(vec![
        mapping,
        portmap::Mapping {
            prog: mount::PROGRAM,
            vers: mount::VERSION,
            prot: portmap::IPPROTO_UDP,
            port: 635,
        },
    ]);
    let t: them_pmap::pmaplist = theirs_decode(&ours(&list));
    let back: Vec<portmap::Mapping> =
        t.0.iter()
            .map(|m| portmap::Mapping {
                prog: m.prog,
                vers: m.vers,
                prot: m.prot,
                port: m.port,
            })
            .collect();
    assert_eq!(back, list.0);

    let args = portmap::CallitArgs {
        prog: 100005,
        vers: 3,
        proc_num: 0,
        args: name("xyz"),
    };
    let t: them_pmap::call_args<'static> = theirs_decode(&ours(&args));
    assert_eq!((t.prog, t.vers, t.proc), (100005, 3, 0));
    assert_eq!(&t.args[..], b"xyz");
}

// ---------------------------------------------------------------------------------------------
// Theirs → ours.

#[test]
fn write_args_theirs_to_ours() {
    let data: Vec<u8> = (0..3001u32).map(|i| (i * 7) as u8).collect();
    let t = them::WRITE3args {
        file: fh_to(&fh(7, 64)),
        offset: u64::MAX - 5,
        count: data.len() as u32,
        stable: them::stable_how::UNSTABLE,
        data: Opaque(Cow::Borrowed(&data)),
    };
    let args: WriteArgs = ours_decode(theirs(&t));
    assert_eq!(
        args,
        WriteArgs {
            file: fh(7, 64),
            offset: u64::MAX - 5,
            count: 3001,
            stable: StableHow::Unstable,
            data: Bytes::from(data),
        }
    );
}

#[test]
fn read_res_theirs_to_ours() {
    let t: them::READ3res<'static> = them::Nfs3Result::Ok(them::READ3resok {
        file_attributes: post_op_attr_to(&Some(fattr(8))),
        count: 3,
        eof: false,
        data: opaque(b"abc"),
    });
    let res: ReadRes = ours_decode(theirs(&t));
    assert_eq!(
        res,
        NfsRes::Ok(ReadResOk {
            file_attributes: Some(fattr(8)),
            count: 3,
            eof: false,
            data: name("abc"),
        })
    );
}

#[test]
fn getattr_and_lookup_res_theirs_to_ours() {
    let t: them::GETATTR3res = them::Nfs3Result::Ok(them::GETATTR3resok {
        obj_attributes: fattr_to(&fattr(21)),
    });
    let res: GetattrRes = ours_decode(theirs(&t));
    assert_eq!(
        res,
        NfsRes::Ok(GetattrResOk {
            obj_attributes: fattr(21)
        })
    );

    let t: them::GETATTR3res = them::Nfs3Result::Err((them::nfsstat3::NFS3ERR_BADHANDLE, Void));
    let res: GetattrRes = ours_decode(theirs(&t));
    assert_eq!(res, NfsRes::fail(Nfs3Status::BadHandle, ()));

    let t: them::LOOKUP3res = them::Nfs3Result::Ok(them::LOOKUP3resok {
        object: fh_to(&fh(1, 33)),
        obj_attributes: them::Nfs3Option::None,
        dir_attributes: post_op_attr_to(&Some(fattr(2))),
    });
    let res: LookupRes = ours_decode(theirs(&t));
    assert_eq!(
        res,
        NfsRes::Ok(LookupResOk {
            object: fh(1, 33),
            obj_attributes: None,
            dir_attributes: Some(fattr(2)),
        })
    );
}

#[test]
fn readdirplus_res_theirs_to_ours() {
    let entries = (0..4u32)
        .map(|i| them::entryplus3 {
            fileid: u64::from(i),
            name: them::filename3(opaque(
                format!("n{i:0>width$}", width = i as usize).as_bytes(),
            )),
            cookie: u64::from(i) + 100,
            name_attributes: post_op_attr_to(&Some(fattr(i))),
            name_handle: option(Some(fh_to(&fh(i as u8, 4 + i as usize)))),
        })
        .collect();
    let t: them::READDIRPLUS3res<'static> = them::Nfs3Result::Ok(them::READDIRPLUS3resok {
        dir_attributes: them::Nfs3Option::None,
        cookieverf: them::cookieverf3(*b"12345678"),
        reply: them::dirlistplus3 {
            entries: List(entries),
            eof: true,
        },
    });
    let res: ReaddirplusRes = ours_decode(theirs(&t));
    let NfsRes::Ok(ok) = res else {
        panic!("{res:?}")
    };
    assert_eq!(ok.dir_attributes, None);
    assert_eq!(ok.cookieverf, CookieVerifier(*b"12345678"));
    assert!(ok.eof);
    assert_eq!(ok.entries.len(), 4);
    for (i, e) in ok.entries.iter().enumerate() {
        let i32 = i as u32;
        assert_eq!(e.fileid, i as u64);
        assert_eq!(e.name, Bytes::from(format!("n{i:0>width$}", width = i)));
        assert_eq!(e.cookie, i as u64 + 100);
        assert_eq!(e.name_attributes, Some(fattr(i32)));
        assert_eq!(e.name_handle, Some(fh(i as u8, 4 + i)));
    }
}

#[test]
fn create_and_mknod_args_theirs_to_ours() {
    let t = them::CREATE3args {
        where_: dirop_to(&DirOpArgs {
            dir: fh(1, 1),
            name: name("x"),
        }),
        how: them::createhow3::EXCLUSIVE(them::createverf3(*b"verifier")),
    };
    let args: CreateArgs = ours_decode(theirs(&t));
    assert_eq!(args.where_.name, name("x"));
    assert_eq!(args.how, CreateHow::Exclusive(CreateVerifier(*b"verifier")));

    let sattr = Sattr {
        mode: Some(0o1777),
        gid: Some(4),
        mtime: SetTime::ServerTime,
        ..Sattr::default()
    };
    let t = them::CREATE3args {
        where_: dirop_to(&DirOpArgs::default()),
        how: them::createhow3::GUARDED(sattr_to(&sattr)),
    };
    let args: CreateArgs = ours_decode(theirs(&t));
    assert_eq!(args.how, CreateHow::Guarded(sattr.clone()));

    let t = them::MKNOD3args {
        where_: dirop_to(&DirOpArgs::default()),
        what: them::mknoddata3::NF3BLK(them::devicedata3 {
            dev_attributes: sattr_to(&sattr),
            spec: them::specdata3 {
                specdata1: 259,
                specdata2: 1,
            },
        }),
    };
    let args: MknodArgs = ours_decode(theirs(&t));
    assert_eq!(
        args.what,
        MknodData::Block(DeviceData {
            dev_attributes: sattr,
            spec: SpecData {
                major: 259,
                minor: 1
            },
        })
    );
}

#[test]
fn mount_and_portmap_theirs_to_ours() {
    let t = them_mount::mountres3::Ok(them_mount::mountres3_ok {
        fhandle: them_mount::fhandle3(opaque(&[9; 64])),
        auth_flavors: vec![1],
    });
    let res: mount::MntRes = ours_decode(theirs(&t));
    assert_eq!(
        res,
        mount::MntRes::Ok {
            fhandle: FileHandle(Bytes::from(vec![9; 64])),
            auth_flavors: vec![1],
        }
    );

    let t = them_mount::mountres3::Err(them_mount::mountstat3::MNT3ERR_NOENT);
    let res: mount::MntRes = ours_decode(theirs(&t));
    assert_eq!(res, mount::MntRes::Fail(mount::MountStatus::NoEnt));

    let t: them_mount::exports<'static, 'static> = List(vec![them_mount::export_node {
        ex_dir: them_mount::dirpath(opaque(b"/srv")),
        ex_groups: List(vec![
            them_mount::name(opaque(b"a")),
            them_mount::name(opaque(b"bc")),
        ]),
    }]);
    let exports: mount::ExportList = ours_decode(theirs(&t));
    assert_eq!(
        exports,
        mount::ExportList(vec![mount::ExportNode {
            dir: name("/srv"),
            groups: vec![name("a"), name("bc")],
        }])
    );

    let t: them_pmap::pmaplist = List(vec![
        them_pmap::mapping {
            prog: 100000,
            vers: 2,
            prot: 6,
            port: 111,
        },
        them_pmap::mapping {
            prog: 100003,
            vers: 3,
            prot: 17,
            port: 2049,
        },
    ]);
    let mut dec = XdrDecoder::new(theirs(&t));
    let reply = portmap::decode_reply(portmap::procs::DUMP, &mut dec).unwrap();
    dec.finish().unwrap();
    assert_eq!(
        reply,
        Some(portmap::PortmapReply::Dump(portmap::MappingList(vec![
            portmap::Mapping {
                prog: 100000,
                vers: 2,
                prot: 6,
                port: 111
            },
            portmap::Mapping {
                prog: 100003,
                vers: 3,
                prot: 17,
                port: 2049
            },
        ])))
    );
}

#[test]
fn constants_agree() {
    assert_eq!(PROGRAM, them::PROGRAM);
    assert_eq!(VERSION, them::VERSION);
    assert_eq!(MAX_FH_BYTES as usize, them::NFS3_FHSIZE);
    assert_eq!(mount::PROGRAM, them_mount::PROGRAM);
    assert_eq!(mount::VERSION, them_mount::VERSION);
    assert_eq!(mount::MNTPATHLEN as usize, them_mount::MNTPATHLEN);
    assert_eq!(mount::MNTNAMLEN as usize, them_mount::MNTNAMLEN);
    assert_eq!(portmap::PROGRAM, them_pmap::PROGRAM);
    assert_eq!(portmap::VERSION, them_pmap::VERSION);
    assert_eq!(portmap::PMAP_PORT, them_pmap::PMAP_PORT);
    assert_eq!(
        [
            access::READ,
            access::LOOKUP,
            access::MODIFY,
            access::EXTEND,
            access::DELETE,
            access::EXECUTE
        ],
        [
            them::ACCESS3_READ,
            them::ACCESS3_LOOKUP,
            them::ACCESS3_MODIFY,
            them::ACCESS3_EXTEND,
            them::ACCESS3_DELETE,
            them::ACCESS3_EXECUTE
        ]
    );
    // Every status value and name agrees.
    for (theirs, value) in [
        (them::nfsstat3::NFS3_OK, 0),
        (them::nfsstat3::NFS3ERR_PERM, 1),
        (them::nfsstat3::NFS3ERR_NOENT, 2),
        (them::nfsstat3::NFS3ERR_IO, 5),
        (them::nfsstat3::NFS3ERR_NXIO, 6),
        (them::nfsstat3::NFS3ERR_ACCES, 13),
        (them::nfsstat3::NFS3ERR_EXIST, 17),
        (them::nfsstat3::NFS3ERR_XDEV, 18),
        (them::nfsstat3::NFS3ERR_NODEV, 19),
        (them::nfsstat3::NFS3ERR_NOTDIR, 20),
        (them::nfsstat3::NFS3ERR_ISDIR, 21),
        (them::nfsstat3::NFS3ERR_INVAL, 22),
        (them::nfsstat3::NFS3ERR_FBIG, 27),
        (them::nfsstat3::NFS3ERR_NOSPC, 28),
        (them::nfsstat3::NFS3ERR_ROFS, 30),
        (them::nfsstat3::NFS3ERR_MLINK, 31),
        (them::nfsstat3::NFS3ERR_NAMETOOLONG, 63),
        (them::nfsstat3::NFS3ERR_NOTEMPTY, 66),
        (them::nfsstat3::NFS3ERR_DQUOT, 69),
        (them::nfsstat3::NFS3ERR_STALE, 70),
        (them::nfsstat3::NFS3ERR_REMOTE, 71),
        (them::nfsstat3::NFS3ERR_BADHANDLE, 10001),
        (them::nfsstat3::NFS3ERR_NOT_SYNC, 10002),
        (them::nfsstat3::NFS3ERR_BAD_COOKIE, 10003),
        (them::nfsstat3::NFS3ERR_NOTSUPP, 10004),
        (them::nfsstat3::NFS3ERR_TOOSMALL, 10005),
        (them::nfsstat3::NFS3ERR_SERVERFAULT, 10006),
        (them::nfsstat3::NFS3ERR_BADTYPE, 10007),
        (them::nfsstat3::NFS3ERR_JUKEBOX, 10008),
    ] {
        let status = Nfs3Status::from_u32(value);
        assert_eq!(theirs as u32, value);
        assert_eq!(status.to_string(), theirs.to_string());
        assert_eq!(&ours(&status)[..], &theirs_pack_status(theirs)[..]);
    }
}

fn theirs_pack_status(status: them::nfsstat3) -> Bytes {
    theirs(&status)
}

#[test]
fn write_and_commit_res_theirs_to_ours() {
    let t: them::WRITE3res = them::Nfs3Result::Ok(them::WRITE3resok {
        file_wcc: wcc_to(&wcc(4)),
        count: 12,
        committed: them::stable_how::FILE_SYNC,
        verf: them::writeverf3(*b"verf0001"),
    });
    let res: WriteRes = ours_decode(theirs(&t));
    assert_eq!(
        res,
        NfsRes::Ok(WriteResOk {
            file_wcc: wcc(4),
            count: 12,
            committed: StableHow::FileSync,
            verf: WriteVerifier(*b"verf0001"),
        })
    );

    let t: them::COMMIT3res = them::Nfs3Result::Err((
        them::nfsstat3::NFS3ERR_IO,
        them::COMMIT3resfail {
            file_wcc: wcc_to(&wcc(5)),
        },
    ));
    let res: CommitRes = ours_decode(theirs(&t));
    assert_eq!(
        res,
        NfsRes::fail(Nfs3Status::Io, CommitResFail { file_wcc: wcc(5) })
    );
}
