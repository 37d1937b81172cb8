//! Unit tests for the tricky NFSv3 encodings: unions, linked lists, padding and bounds.

use bytes::Bytes;

use super::*;
use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrError, from_bytes, to_bytes};

fn words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn fh(bytes: &'static [u8]) -> FileHandle {
    FileHandle(Bytes::from_static(bytes))
}

fn fattr() -> Fattr {
    Fattr {
        file_type: FileType::Directory,
        mode: 0o755,
        nlink: 2,
        uid: 1000,
        gid: 100,
        size: 4096,
        used: 8192,
        rdev: SpecData { major: 0, minor: 0 },
        fsid: 0x1122_3344_5566_7788,
        fileid: 42,
        atime: NfsTime {
            seconds: 1,
            nseconds: 2,
        },
        mtime: NfsTime {
            seconds: 3,
            nseconds: 4,
        },
        ctime: NfsTime {
            seconds: 5,
            nseconds: 6,
        },
    }
}

fn round_trip<T: XdrEncode + XdrDecode + PartialEq + std::fmt::Debug>(value: &T) -> Bytes {
    let bytes = to_bytes(value);
    assert_eq!(&from_bytes::<T>(bytes.clone()).unwrap(), value);
    bytes
}

#[test]
fn status_names_and_values() {
    assert_eq!(Nfs3Status::Ok.to_string(), "NFS3_OK");
    assert_eq!(Nfs3Status::NoEnt.to_string(), "NFS3ERR_NOENT");
    assert_eq!(Nfs3Status::NotSync.to_string(), "NFS3ERR_NOT_SYNC");
    assert_eq!(Nfs3Status::BadCookie.to_string(), "NFS3ERR_BAD_COOKIE");
    assert_eq!(Nfs3Status::Unknown(4).to_string(), "NFS3ERR_UNKNOWN(4)");
    for value in 0..10_010 {
        assert_eq!(Nfs3Status::from_u32(value).to_u32(), value);
    }
    assert_eq!(Nfs3Status::from_u32(10008), Nfs3Status::Jukebox);
    assert_eq!(Nfs3Status::from_u32(3), Nfs3Status::Unknown(3));
}

#[test]
fn proc_names() {
    assert_eq!(proc_name(procs::NULL), "NULL");
    assert_eq!(proc_name(procs::READDIRPLUS), "READDIRPLUS");
    assert_eq!(proc_name(procs::COMMIT), "COMMIT");
    assert_eq!(proc_name(22), "UNKNOWN");
    assert_eq!(
        Nfs3Call::Commit(CommitArgs::default()).proc_name(),
        "COMMIT"
    );
}

#[test]
fn file_handle_debug_is_hex() {
    assert_eq!(
        format!("{:?}", fh(&[0x01, 0xab, 0xff])),
        "FileHandle(01abff)"
    );
}

#[test]
fn stable_how_orders_by_strength() {
    assert!(StableHow::Unstable < StableHow::DataSync);
    assert!(StableHow::DataSync < StableHow::FileSync);
    assert_eq!(
        StableHow::Unstable.max(StableHow::FileSync),
        StableHow::FileSync
    );
}

#[test]
fn fattr_is_84_bytes() {
    let bytes = round_trip(&fattr());
    assert_eq!(bytes.len(), 84);
    assert_eq!(&bytes[..8], &words(&[2, 0o755])[..]);
}

#[test]
fn name_padding() {
    let args = LookupArgs {
        what: DirOpArgs {
            dir: fh(&[7; 5]),
            name: Bytes::from_static(b"hello"),
        },
    };
    let bytes = round_trip(&args);
    let mut expected = words(&[5]);
    expected.extend([7, 7, 7, 7, 7, 0, 0, 0]);
    expected.extend(words(&[5]));
    expected.extend(b"hello\0\0\0");
    assert_eq!(&bytes[..], &expected[..]);

    // Non-zero padding is tolerated (RFC 4506 says it should be zero, but receivers need not
    // check), and the name stops at its length.
    let mut sloppy = expected.clone();
    let last = sloppy.len() - 1;
    sloppy[last] = 0xff;
    assert_eq!(from_bytes::<LookupArgs>(Bytes::from(sloppy)).unwrap(), args);
}

#[test]
fn sattr_and_set_time_unions() {
    let sattr = Sattr {
        mode: Some(0o644),
        uid: None,
        gid: Some(5),
        size: Some(1 << 40),
        atime: SetTime::ServerTime,
        mtime: SetTime::ClientTime(NfsTime {
            seconds: 9,
            nseconds: 10,
        }),
    };
    let bytes = round_trip(&sattr);
    assert_eq!(
        &bytes[..],
        &words(&[1, 0o644, 0, 1, 5, 1, 256, 0, 1, 2, 9, 10])[..]
    );
    assert_eq!(&to_bytes(&Sattr::default())[..], &words(&[0; 6])[..]);
    assert!(matches!(
        from_bytes::<SetTime>(Bytes::from(words(&[3]))),
        Err(XdrError::InvalidValue {
            what: "time_how",
            value: 3
        })
    ));
}

#[test]
fn create_how_all_modes() {
    let unchecked = CreateHow::Unchecked(Sattr {
        mode: Some(0o600),
        ..Sattr::default()
    });
    assert_eq!(
        &round_trip(&unchecked)[..],
        &words(&[0, 1, 0o600, 0, 0, 0, 0, 0])[..]
    );
    let guarded = CreateHow::Guarded(Sattr::default());
    assert_eq!(
        &round_trip(&guarded)[..],
        &words(&[1, 0, 0, 0, 0, 0, 0])[..]
    );
    let exclusive = CreateHow::Exclusive(CreateVerifier([1, 2, 3, 4, 5, 6, 7, 8]));
    let mut expected = words(&[2]);
    expected.extend([1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&round_trip(&exclusive)[..], &expected[..]);
    assert!(matches!(
        from_bytes::<CreateHow>(Bytes::from(words(&[3]))),
        Err(XdrError::InvalidValue { .. })
    ));
}

#[test]
fn mknod_union() {
    let chr = MknodData::Char(DeviceData {
        dev_attributes: Sattr::default(),
        spec: SpecData { major: 1, minor: 3 },
    });
    assert_eq!(
        &round_trip(&chr)[..],
        &words(&[4, 0, 0, 0, 0, 0, 0, 1, 3])[..]
    );
    let fifo = MknodData::Fifo(Sattr::default());
    assert_eq!(&round_trip(&fifo)[..], &words(&[7, 0, 0, 0, 0, 0, 0])[..]);
    // The default arm is void.
    let reg = MknodData::Other(FileType::Regular);
    assert_eq!(&round_trip(&reg)[..], &words(&[1])[..]);
    // An `Other` that names a type with an arm is still well-formed on the wire.
    let odd = to_bytes(&MknodData::Other(FileType::Block));
    assert_eq!(
        from_bytes::<MknodData>(odd).unwrap(),
        MknodData::Block(DeviceData::default())
    );
    // Types outside ftype3 are invalid.
    assert!(matches!(
        from_bytes::<MknodData>(Bytes::from(words(&[8]))),
        Err(XdrError::InvalidValue { what: "ftype3", .. })
    ));
}

#[test]
fn nfs_res_arms() {
    let ok: GetattrRes = NfsRes::Ok(GetattrResOk {
        obj_attributes: fattr(),
    });
    let bytes = round_trip(&ok);
    assert_eq!(bytes.len(), 4 + 84);
    assert_eq!(ok.status(), Nfs3Status::Ok);

    // GETATTR's resfail is void: just the status.
    let fail: GetattrRes = NfsRes::fail(Nfs3Status::Stale, ());
    assert_eq!(&round_trip(&fail)[..], &words(&[70])[..]);
    assert_eq!(fail.status(), Nfs3Status::Stale);
    assert_eq!(fail.clone().into_result(), Err((Nfs3Status::Stale, ())));

    // Other failures carry their resfail arm.
    let fail: LookupRes = NfsRes::fail(
        Nfs3Status::NoEnt,
        LookupResFail {
            dir_attributes: None,
        },
    );
    assert_eq!(&round_trip(&fail)[..], &words(&[2, 0])[..]);

    // Unknown statuses are failures, kept as sent.
    let fail: AccessRes = NfsRes::fail(
        Nfs3Status::Unknown(12345),
        AccessResFail {
            obj_attributes: None,
        },
    );
    round_trip(&fail);

    // A failure claiming NFS3_OK would be read back as the ok arm: sent as SERVERFAULT.
    let bogus: RemoveRes = NfsRes::fail(Nfs3Status::Ok, RemoveResFail::default());
    assert_eq!(&to_bytes(&bogus)[..], &words(&[10006, 0, 0])[..]);
}

#[test]
fn readdir_linked_list() {
    let res: ReaddirRes = NfsRes::Ok(ReaddirResOk {
        dir_attributes: None,
        cookieverf: CookieVerifier([9; 8]),
        entries: vec![
            Entry {
                fileid: 1,
                name: Bytes::from_static(b"."),
                cookie: 10,
            },
            Entry {
                fileid: 2,
                name: Bytes::from_static(b"abcd"),
                cookie: 20,
            },
        ],
        eof: true,
    });
    let bytes = round_trip(&res);
    let mut expected = words(&[0, 0]);
    expected.extend([9; 8]);
    expected.extend(words(&[1, 0, 1, 1]));
    expected.extend(b".\0\0\0");
    expected.extend(words(&[0, 10, 1, 0, 2, 4]));
    expected.extend(b"abcd");
    expected.extend(words(&[0, 20, 0, 1]));
    assert_eq!(&bytes[..], &expected[..]);

    let empty: ReaddirRes = NfsRes::Ok(ReaddirResOk::default());
    let mut expected = words(&[0, 0, 0, 0, 0, 0]);
    assert_eq!(&round_trip(&empty)[..], &expected[..]);
    // A list without its terminating FALSE is truncated.
    expected.truncate(expected.len() - 8);
    expected.extend(words(&[1, 0, 1, 0]));
    assert!(matches!(
        from_bytes::<ReaddirRes>(Bytes::from(expected)),
        Err(XdrError::Truncated { .. })
    ));
}

#[test]
fn readdirplus_entries_round_trip() {
    let entries = (0..5u64)
        .map(|i| EntryPlus {
            fileid: i + 100,
            name: Bytes::from(format!("file-{i}")),
            cookie: i + 1,
            name_attributes: (i % 2 == 0).then(fattr),
            name_handle: (i % 3 != 0).then(|| FileHandle(Bytes::from(vec![i as u8; 32]))),
        })
        .collect();
    let res: ReaddirplusRes = NfsRes::Ok(ReaddirplusResOk {
        dir_attributes: Some(fattr()),
        cookieverf: CookieVerifier::default(),
        entries,
        eof: false,
    });
    round_trip(&res);
}

#[test]
fn handle_name_and_path_bounds() {
    // A 64-byte handle is fine; 65 bytes is rejected before being sliced.
    round_trip(&GetattrArgs {
        object: FileHandle(Bytes::from(vec![1; 64])),
    });
    let bytes = to_bytes(&GetattrArgs {
        object: FileHandle(Bytes::from(vec![1; 65])),
    });
    assert!(matches!(
        from_bytes::<GetattrArgs>(bytes),
        Err(XdrError::TooLong {
            what: "nfs_fh3",
            len: 65,
            max: 64
        })
    ));

    // Names decode up to PATH_MAX (the server answers NAMETOOLONG past 255); longer is
    // rejected.
    let lookup = |len: usize| LookupArgs {
        what: DirOpArgs {
            dir: fh(&[1]),
            name: Bytes::from(vec![b'x'; len]),
        },
    };
    round_trip(&lookup(255));
    round_trip(&lookup(256));
    round_trip(&lookup(4096));
    assert!(matches!(
        from_bytes::<LookupArgs>(to_bytes(&lookup(4097))),
        Err(XdrError::TooLong {
            what: "filename3",
            len: 4097,
            ..
        })
    ));

    // Symlink targets are bounded by MAX_PATH_BYTES.
    let symlink = |len: usize| SymlinkArgs {
        where_: DirOpArgs::default(),
        symlink: SymlinkData {
            symlink_attributes: Sattr::default(),
            symlink_data: Bytes::from(vec![b'/'; len]),
        },
    };
    round_trip(&symlink(4096));
    assert!(matches!(
        from_bytes::<SymlinkArgs>(to_bytes(&symlink(4097))),
        Err(XdrError::TooLong {
            what: "nfspath3",
            ..
        })
    ));
}

fn write_args(len: usize) -> WriteArgs {
    WriteArgs {
        file: fh(&[1, 2, 3, 4]),
        offset: 1 << 33,
        count: len as u32,
        stable: StableHow::DataSync,
        data: Bytes::from(vec![0xa5; len]),
    }
}

#[test]
fn write_data_is_zero_copy_and_bounded() {
    let args = write_args(4097);
    let mut enc = XdrEncoder::new();
    Nfs3Call::Write(args.clone()).encode(&mut enc);
    let segments = enc.finish();
    assert!(
        segments.iter().any(|s| s.as_ptr() == args.data.as_ptr()),
        "WRITE data must be a shared segment"
    );

    let record: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
    let record = Bytes::from(record);
    let mut dec = XdrDecoder::new(record.clone()).with_max_data_bytes(4097);
    let Some(Nfs3Call::Write(decoded)) = decode_call(procs::WRITE, &mut dec).unwrap() else {
        panic!("not a WRITE");
    };
    dec.finish().unwrap();
    assert_eq!(decoded, args);
    // The decoded data is a slice of the record, not a copy.
    let offset = 4 + 4 + 8 + 4 + 4 + 4;
    assert_eq!(decoded.data.as_ptr(), record[offset..].as_ptr());

    // One byte over the negotiated maximum is rejected.
    let mut dec = XdrDecoder::new(record).with_max_data_bytes(4096);
    assert!(matches!(
        decode_call(procs::WRITE, &mut dec),
        Err(XdrError::TooLong {
            what: "data",
            len: 4097,
            max: 4096
        })
    ));
}

#[test]
fn write_of_segments_encodes_as_the_joined_write_and_shares_big_segments() {
    // Segments of every size class (copied below 1 KiB, shared above) and lengths that
    // leave padding.
    let parts = [
        Bytes::from(vec![1u8; 3]),
        Bytes::from(vec![2u8; 4096]),
        Bytes::from(vec![0u8; 1023]),
        Bytes::from(vec![3u8; 1025]),
        Bytes::from(vec![4u8; 1]),
    ];
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let file = fh(&[9, 8, 7]);
    let whole = WriteArgs {
        file: file.clone(),
        offset: 12345,
        count: joined.len() as u32,
        stable: StableHow::Unstable,
        data: Bytes::from(joined),
    };
    let split = WriteSegmentsArgs {
        file: &file,
        offset: 12345,
        stable: StableHow::Unstable,
        data: &parts,
    };
    let mut enc = XdrEncoder::new();
    split.encode(&mut enc);
    assert_eq!(enc.len_bytes(), to_bytes(&whole).len());
    let segments = enc.finish();
    for big in [&parts[1], &parts[3]] {
        assert!(
            segments.iter().any(|s| s.as_ptr() == big.as_ptr()),
            "a segment of 1 KiB or more goes on the wire as it is"
        );
    }
    let wire: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(wire, to_bytes(&whole).to_vec());
    assert_eq!(from_bytes::<WriteArgs>(Bytes::from(wire)).unwrap(), whole);
}

#[test]
fn write_count_is_not_trusted() {
    // count claims 4 GiB but the data is 3 bytes: decoded as sent, no allocation from count.
    let mut args = write_args(3);
    args.count = u32::MAX;
    let decoded = from_bytes::<WriteArgs>(to_bytes(&args)).unwrap();
    assert_eq!(decoded, args);
    assert!(!decoded.is_consistent());
    assert!(write_args(3).is_consistent());

    // Data length claims more than the record holds.
    let mut bytes = to_bytes(&write_args(0)).to_vec();
    let len_at = bytes.len() - 4;
    bytes[len_at..].copy_from_slice(&1000u32.to_be_bytes());
    assert!(matches!(
        from_bytes::<WriteArgs>(Bytes::from(bytes)),
        Err(XdrError::Truncated { .. })
    ));
}

#[test]
fn read_reply_data_padding() {
    let res: ReadRes = NfsRes::Ok(ReadResOk {
        file_attributes: None,
        count: 5,
        eof: true,
        data: Bytes::from_static(b"12345"),
    });
    let bytes = round_trip(&res);
    let mut expected = words(&[0, 0, 5, 1, 5]);
    expected.extend(b"12345\0\0\0");
    assert_eq!(&bytes[..], &expected[..]);
    // Padding must be present.
    let short = bytes.slice(..bytes.len() - 1);
    assert!(matches!(
        from_bytes::<ReadRes>(short),
        Err(XdrError::Truncated { .. })
    ));
}

#[test]
fn every_truncation_of_a_call_fails() {
    let call = Nfs3Call::Create(CreateArgs {
        where_: DirOpArgs {
            dir: fh(&[1, 2, 3]),
            name: Bytes::from_static(b"new"),
        },
        how: CreateHow::Guarded(Sattr {
            mode: Some(0o644),
            mtime: SetTime::ClientTime(NfsTime::default()),
            ..Sattr::default()
        }),
    });
    let bytes = to_bytes(&call);
    for len in 0..bytes.len() {
        let mut dec = XdrDecoder::new(bytes.slice(..len));
        assert!(
            matches!(
                decode_call(procs::CREATE, &mut dec),
                Err(XdrError::Truncated { .. })
            ),
            "prefix of {len} bytes"
        );
    }
    let mut dec = XdrDecoder::new(bytes);
    assert_eq!(decode_call(procs::CREATE, &mut dec), Ok(Some(call)));
    dec.finish().unwrap();
}

#[test]
fn unknown_procedures_are_none() {
    let mut dec = XdrDecoder::new(Bytes::from_static(&[0; 16]));
    assert_eq!(decode_call(22, &mut dec), Ok(None));
    assert_eq!(decode_reply(u32::MAX, &mut dec), Ok(None));
    assert_eq!(dec.remaining(), 16, "nothing consumed");
    assert_eq!(decode_call(procs::NULL, &mut dec), Ok(Some(Nfs3Call::Null)));
    assert_eq!(
        decode_reply(procs::NULL, &mut dec),
        Ok(Some(Nfs3Reply::Null))
    );
}

#[test]
fn absurd_list_lengths_are_rejected() {
    // A READDIR reply of MAX_LIST_ITEMS + 1 minimal entries.
    let mut bytes = words(&[0, 0, 0, 0]);
    let entry = words(&[1, 0, 0, 0, 0, 0]);
    for _ in 0..=codec::MAX_LIST_ITEMS {
        bytes.extend(&entry);
    }
    bytes.extend(words(&[0, 1]));
    assert!(matches!(
        from_bytes::<ReaddirRes>(Bytes::from(bytes)),
        Err(XdrError::TooLong { what: "list", .. })
    ));
}
