//! Property tests: every NFSv3, MOUNT and portmap call and reply survives encode → decode
//! unchanged, strict prefixes of an encoding never decode, and decoding arbitrary or mutated
//! bytes with any procedure number never panics.

use bytes::Bytes;
use nfsio_proto::nfs3::*;
use nfsio_proto::xdr::{XdrDecoder, XdrEncode, XdrEncoder, XdrError, XdrResult};
use nfsio_proto::{mount, portmap};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Strategies.

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Payloads up to 3 KiB, so that both the copied (< 1 KiB) and the shared-segment encodings
/// are exercised.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![bytes(64), bytes(3 * 1024)]
}

fn fh() -> impl Strategy<Value = FileHandle> {
    bytes(MAX_FH_BYTES as usize).prop_map(FileHandle)
}

fn name() -> impl Strategy<Value = Bytes> {
    prop_oneof![4 => bytes(16), 1 => bytes(MAX_NAME_BYTES as usize)]
}

fn path() -> impl Strategy<Value = Bytes> {
    prop_oneof![4 => bytes(32), 1 => bytes(MAX_PATH_BYTES as usize)]
}

fn time() -> impl Strategy<Value = NfsTime> {
    (any::<u32>(), any::<u32>()).prop_map(|(seconds, nseconds)| NfsTime { seconds, nseconds })
}

fn file_type() -> impl Strategy<Value = FileType> {
    prop_oneof![
        Just(FileType::Regular),
        Just(FileType::Directory),
        Just(FileType::Block),
        Just(FileType::Character),
        Just(FileType::Symlink),
        Just(FileType::Socket),
        Just(FileType::Fifo),
    ]
}

fn spec() -> impl Strategy<Value = SpecData> {
    (any::<u32>(), any::<u32>()).prop_map(|(major, minor)| SpecData { major, minor })
}

fn fattr() -> BoxedStrategy<Fattr> {
    (
        (
            file_type(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            spec(),
            any::<u64>(),
            any::<u64>(),
        ),
        (time(), time(), time()),
    )
        .prop_map(
            |(
                (file_type, mode, nlink, uid, gid),
                (size, used, rdev, fsid, fileid),
                (atime, mtime, ctime),
            )| Fattr {
                file_type,
                mode,
                nlink,
                uid,
                gid,
                size,
                used,
                rdev,
                fsid,
                fileid,
                atime,
                mtime,
                ctime,
            },
        )
        .boxed()
}

fn post_op_attr() -> BoxedStrategy<PostOpAttr> {
    prop::option::of(fattr()).boxed()
}

fn wcc_data() -> BoxedStrategy<WccData> {
    (
        prop::option::of(
            (any::<u64>(), time(), time()).prop_map(|(size, mtime, ctime)| WccAttr {
                size,
                mtime,
                ctime,
            }),
        ),
        post_op_attr(),
    )
        .prop_map(|(before, after)| WccData { before, after })
        .boxed()
}

fn set_time() -> BoxedStrategy<SetTime> {
    prop_oneof![
        Just(SetTime::DontChange),
        Just(SetTime::ServerTime),
        time().prop_map(SetTime::ClientTime),
    ]
    .boxed()
}

fn sattr() -> BoxedStrategy<Sattr> {
    (
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        any::<Option<u64>>(),
        set_time(),
        set_time(),
    )
        .prop_map(|(mode, uid, gid, size, atime, mtime)| Sattr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        })
        .boxed()
}

fn dirop() -> BoxedStrategy<DirOpArgs> {
    (fh(), name())
        .prop_map(|(dir, name)| DirOpArgs { dir, name })
        .boxed()
}

fn stable() -> impl Strategy<Value = StableHow> {
    prop_oneof![
        Just(StableHow::Unstable),
        Just(StableHow::DataSync),
        Just(StableHow::FileSync),
    ]
}

fn write_verf() -> impl Strategy<Value = WriteVerifier> {
    any::<[u8; 8]>().prop_map(WriteVerifier)
}

fn cookie_verf() -> impl Strategy<Value = CookieVerifier> {
    any::<[u8; 8]>().prop_map(CookieVerifier)
}

fn create_how() -> BoxedStrategy<CreateHow> {
    prop_oneof![
        sattr().prop_map(CreateHow::Unchecked),
        sattr().prop_map(CreateHow::Guarded),
        any::<[u8; 8]>().prop_map(|v| CreateHow::Exclusive(CreateVerifier(v))),
    ]
    .boxed()
}

fn device_data() -> impl Strategy<Value = DeviceData> {
    (sattr(), spec()).prop_map(|(dev_attributes, spec)| DeviceData {
        dev_attributes,
        spec,
    })
}

fn mknod_data() -> BoxedStrategy<MknodData> {
    prop_oneof![
        device_data().prop_map(MknodData::Char),
        device_data().prop_map(MknodData::Block),
        sattr().prop_map(MknodData::Socket),
        sattr().prop_map(MknodData::Fifo),
        prop_oneof![
            Just(FileType::Regular),
            Just(FileType::Directory),
            Just(FileType::Symlink)
        ]
        .prop_map(MknodData::Other),
    ]
    .boxed()
}

/// Any failure status: named ones, and values RFC 1813 does not define.
fn fail_status() -> impl Strategy<Value = Nfs3Status> {
    any::<u32>()
        .prop_flat_map(|raw| {
            prop_oneof![
                Just(Nfs3Status::from_u32(raw)),
                prop::sample::select(vec![
                    1u32, 2, 5, 6, 13, 17, 18, 19, 20, 21, 22, 27, 28, 30, 31, 63, 66, 69, 70, 71,
                    10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008,
                ])
                .prop_map(Nfs3Status::from_u32),
            ]
        })
        .prop_filter("a failure", |status| !status.is_ok())
}

fn res<T: std::fmt::Debug + Clone, F: std::fmt::Debug + Clone>(
    ok: impl Strategy<Value = T>,
    fail: impl Strategy<Value = F>,
) -> impl Strategy<Value = NfsRes<T, F>> {
    prop_oneof![
        ok.prop_map(NfsRes::Ok),
        (fail_status(), fail).prop_map(|(status, fail)| NfsRes::Fail { status, fail }),
    ]
}

// Arguments.

fn getattr_args() -> impl Strategy<Value = GetattrArgs> {
    fh().prop_map(|object| GetattrArgs { object })
}

fn setattr_args() -> impl Strategy<Value = SetattrArgs> {
    (fh(), sattr(), prop::option::of(time())).prop_map(|(object, new_attributes, guard)| {
        SetattrArgs {
            object,
            new_attributes,
            guard,
        }
    })
}

fn lookup_args() -> impl Strategy<Value = LookupArgs> {
    dirop().prop_map(|what| LookupArgs { what })
}

fn access_args() -> impl Strategy<Value = AccessArgs> {
    (fh(), any::<u32>()).prop_map(|(object, access)| AccessArgs { object, access })
}

fn readlink_args() -> impl Strategy<Value = ReadlinkArgs> {
    fh().prop_map(|symlink| ReadlinkArgs { symlink })
}

fn read_args() -> impl Strategy<Value = ReadArgs> {
    (fh(), any::<u64>(), any::<u32>()).prop_map(|(file, offset, count)| ReadArgs {
        file,
        offset,
        count,
    })
}

fn write_args() -> impl Strategy<Value = WriteArgs> {
    (
        fh(),
        any::<u64>(),
        any::<u32>(),
        stable(),
        payload(),
        any::<bool>(),
    )
        .prop_map(
            |(file, offset, count, stable, data, consistent)| WriteArgs {
                file,
                offset,
                count: if consistent { data.len() as u32 } else { count },
                stable,
                data,
            },
        )
}

fn create_args() -> impl Strategy<Value = CreateArgs> {
    (dirop(), create_how()).prop_map(|(where_, how)| CreateArgs { where_, how })
}

fn mkdir_args() -> impl Strategy<Value = MkdirArgs> {
    (dirop(), sattr()).prop_map(|(where_, attributes)| MkdirArgs { where_, attributes })
}

fn symlink_args() -> impl Strategy<Value = SymlinkArgs> {
    (dirop(), sattr(), path()).prop_map(|(where_, symlink_attributes, symlink_data)| SymlinkArgs {
        where_,
        symlink: SymlinkData {
            symlink_attributes,
            symlink_data,
        },
    })
}

fn mknod_args() -> impl Strategy<Value = MknodArgs> {
    (dirop(), mknod_data()).prop_map(|(where_, what)| MknodArgs { where_, what })
}

fn remove_args() -> impl Strategy<Value = RemoveArgs> {
    dirop().prop_map(|object| RemoveArgs { object })
}

fn rmdir_args() -> impl Strategy<Value = RmdirArgs> {
    dirop().prop_map(|object| RmdirArgs { object })
}

fn rename_args() -> impl Strategy<Value = RenameArgs> {
    (dirop(), dirop()).prop_map(|(from, to)| RenameArgs { from, to })
}

fn link_args() -> impl Strategy<Value = LinkArgs> {
    (fh(), dirop()).prop_map(|(file, link)| LinkArgs { file, link })
}

fn readdir_args() -> impl Strategy<Value = ReaddirArgs> {
    (fh(), any::<u64>(), cookie_verf(), any::<u32>()).prop_map(
        |(dir, cookie, cookieverf, count)| ReaddirArgs {
            dir,
            cookie,
            cookieverf,
            count,
        },
    )
}

fn readdirplus_args() -> impl Strategy<Value = ReaddirplusArgs> {
    (
        fh(),
        any::<u64>(),
        cookie_verf(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(dir, cookie, cookieverf, dircount, maxcount)| ReaddirplusArgs {
                dir,
                cookie,
                cookieverf,
                dircount,
                maxcount,
            },
        )
}

fn fsstat_args() -> impl Strategy<Value = FsstatArgs> {
    fh().prop_map(|fsroot| FsstatArgs { fsroot })
}

fn fsinfo_args() -> impl Strategy<Value = FsinfoArgs> {
    fh().prop_map(|fsroot| FsinfoArgs { fsroot })
}

fn pathconf_args() -> impl Strategy<Value = PathconfArgs> {
    fh().prop_map(|object| PathconfArgs { object })
}

fn commit_args() -> impl Strategy<Value = CommitArgs> {
    (fh(), any::<u64>(), any::<u32>()).prop_map(|(file, offset, count)| CommitArgs {
        file,
        offset,
        count,
    })
}

// Results.

fn getattr_res() -> impl Strategy<Value = GetattrRes> {
    res(
        fattr().prop_map(|obj_attributes| GetattrResOk { obj_attributes }),
        Just(()),
    )
}

fn setattr_res() -> impl Strategy<Value = SetattrRes> {
    res(
        wcc_data().prop_map(|obj_wcc| SetattrResOk { obj_wcc }),
        wcc_data().prop_map(|obj_wcc| SetattrResFail { obj_wcc }),
    )
}

fn lookup_res() -> impl Strategy<Value = LookupRes> {
    res(
        (fh(), post_op_attr(), post_op_attr()).prop_map(
            |(object, obj_attributes, dir_attributes)| LookupResOk {
                object,
                obj_attributes,
                dir_attributes,
            },
        ),
        post_op_attr().prop_map(|dir_attributes| LookupResFail { dir_attributes }),
    )
}

fn access_res() -> impl Strategy<Value = AccessRes> {
    res(
        (post_op_attr(), any::<u32>()).prop_map(|(obj_attributes, access)| AccessResOk {
            obj_attributes,
            access,
        }),
        post_op_attr().prop_map(|obj_attributes| AccessResFail { obj_attributes }),
    )
}

fn readlink_res() -> impl Strategy<Value = ReadlinkRes> {
    res(
        (post_op_attr(), path()).prop_map(|(symlink_attributes, data)| ReadlinkResOk {
            symlink_attributes,
            data,
        }),
        post_op_attr().prop_map(|symlink_attributes| ReadlinkResFail { symlink_attributes }),
    )
}

fn read_res() -> impl Strategy<Value = ReadRes> {
    res(
        (post_op_attr(), any::<bool>(), payload()).prop_map(|(file_attributes, eof, data)| {
            ReadResOk {
                file_attributes,
                count: data.len() as u32,
                eof,
                data,
            }
        }),
        post_op_attr().prop_map(|file_attributes| ReadResFail { file_attributes }),
    )
}

fn write_res() -> impl Strategy<Value = WriteRes> {
    res(
        (wcc_data(), any::<u32>(), stable(), write_verf()).prop_map(
            |(file_wcc, count, committed, verf)| WriteResOk {
                file_wcc,
                count,
                committed,
                verf,
            },
        ),
        wcc_data().prop_map(|file_wcc| WriteResFail { file_wcc }),
    )
}

fn create_res() -> impl Strategy<Value = CreateRes> {
    res(
        (prop::option::of(fh()), post_op_attr(), wcc_data()).prop_map(
            |(obj, obj_attributes, dir_wcc)| CreateResOk {
                obj,
                obj_attributes,
                dir_wcc,
            },
        ),
        wcc_data().prop_map(|dir_wcc| CreateResFail { dir_wcc }),
    )
}

fn remove_res() -> impl Strategy<Value = RemoveRes> {
    res(
        wcc_data().prop_map(|dir_wcc| RemoveResOk { dir_wcc }),
        wcc_data().prop_map(|dir_wcc| RemoveResFail { dir_wcc }),
    )
}

fn rename_res() -> impl Strategy<Value = RenameRes> {
    res(
        (wcc_data(), wcc_data()).prop_map(|(fromdir_wcc, todir_wcc)| RenameResOk {
            fromdir_wcc,
            todir_wcc,
        }),
        (wcc_data(), wcc_data()).prop_map(|(fromdir_wcc, todir_wcc)| RenameResFail {
            fromdir_wcc,
            todir_wcc,
        }),
    )
}

fn link_res() -> impl Strategy<Value = LinkRes> {
    res(
        (post_op_attr(), wcc_data()).prop_map(|(file_attributes, linkdir_wcc)| LinkResOk {
            file_attributes,
            linkdir_wcc,
        }),
        (post_op_attr(), wcc_data()).prop_map(|(file_attributes, linkdir_wcc)| LinkResFail {
            file_attributes,
            linkdir_wcc,
        }),
    )
}

fn readdir_res() -> impl Strategy<Value = ReaddirRes> {
    let entry = (any::<u64>(), name(), any::<u64>()).prop_map(|(fileid, name, cookie)| Entry {
        fileid,
        name,
        cookie,
    });
    res(
        (
            post_op_attr(),
            cookie_verf(),
            prop::collection::vec(entry, 0..12),
            any::<bool>(),
        )
            .prop_map(|(dir_attributes, cookieverf, entries, eof)| ReaddirResOk {
                dir_attributes,
                cookieverf,
                entries,
                eof,
            }),
        post_op_attr().prop_map(|dir_attributes| ReaddirResFail { dir_attributes }),
    )
}

fn readdirplus_res() -> impl Strategy<Value = ReaddirplusRes> {
    let entry = (
        any::<u64>(),
        name(),
        any::<u64>(),
        post_op_attr(),
        prop::option::of(fh()),
    )
        .prop_map(
            |(fileid, name, cookie, name_attributes, name_handle)| EntryPlus {
                fileid,
                name,
                cookie,
                name_attributes,
                name_handle,
            },
        );
    res(
        (
            post_op_attr(),
            cookie_verf(),
            prop::collection::vec(entry, 0..8),
            any::<bool>(),
        )
            .prop_map(
                |(dir_attributes, cookieverf, entries, eof)| ReaddirplusResOk {
                    dir_attributes,
                    cookieverf,
                    entries,
                    eof,
                },
            ),
        post_op_attr().prop_map(|dir_attributes| ReaddirplusResFail { dir_attributes }),
    )
}

fn fsstat_res() -> impl Strategy<Value = FsstatRes> {
    res(
        (post_op_attr(), any::<[u64; 6]>(), any::<u32>()).prop_map(
            |(obj_attributes, [tbytes, fbytes, abytes, tfiles, ffiles, afiles], invarsec)| {
                FsstatResOk {
                    obj_attributes,
                    tbytes,
                    fbytes,
                    abytes,
                    tfiles,
                    ffiles,
                    afiles,
                    invarsec,
                }
            },
        ),
        post_op_attr().prop_map(|obj_attributes| FsstatResFail { obj_attributes }),
    )
}

fn fsinfo_res() -> impl Strategy<Value = FsinfoRes> {
    res(
        (
            post_op_attr(),
            any::<[u32; 7]>(),
            any::<u64>(),
            time(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    obj_attributes,
                    [rtmax, rtpref, rtmult, wtmax, wtpref, wtmult, dtpref],
                    maxfilesize,
                    time_delta,
                    properties,
                )| FsinfoResOk {
                    obj_attributes,
                    rtmax,
                    rtpref,
                    rtmult,
                    wtmax,
                    wtpref,
                    wtmult,
                    dtpref,
                    maxfilesize,
                    time_delta,
                    properties,
                },
            ),
        post_op_attr().prop_map(|obj_attributes| FsinfoResFail { obj_attributes }),
    )
}

fn pathconf_res() -> impl Strategy<Value = PathconfRes> {
    res(
        (
            post_op_attr(),
            any::<u32>(),
            any::<u32>(),
            any::<[bool; 4]>(),
        )
            .prop_map(
                |(
                    obj_attributes,
                    linkmax,
                    name_max,
                    [
                        no_trunc,
                        chown_restricted,
                        case_insensitive,
                        case_preserving,
                    ],
                )| PathconfResOk {
                    obj_attributes,
                    linkmax,
                    name_max,
                    no_trunc,
                    chown_restricted,
                    case_insensitive,
                    case_preserving,
                },
            ),
        post_op_attr().prop_map(|obj_attributes| PathconfResFail { obj_attributes }),
    )
}

fn commit_res() -> impl Strategy<Value = CommitRes> {
    res(
        (wcc_data(), write_verf()).prop_map(|(file_wcc, verf)| CommitResOk { file_wcc, verf }),
        wcc_data().prop_map(|file_wcc| CommitResFail { file_wcc }),
    )
}

// MOUNT and portmap.

fn mount_status_fail() -> impl Strategy<Value = mount::MountStatus> {
    prop_oneof![
        prop::sample::select(vec![1u32, 2, 5, 13, 20, 22, 63, 10004, 10006]),
        any::<u32>(),
    ]
    .prop_map(mount::MountStatus::from_u32)
    .prop_filter("a failure", |status| !status.is_ok())
}

fn mnt_args() -> impl Strategy<Value = mount::MntArgs> {
    prop_oneof![bytes(32), bytes(mount::MNTPATHLEN as usize)]
        .prop_map(|dirpath| mount::MntArgs { dirpath })
}

fn mnt_res() -> impl Strategy<Value = mount::MntRes> {
    prop_oneof![
        (
            fh(),
            prop::collection::vec(any::<u32>(), 0..=mount::MAX_AUTH_FLAVORS as usize)
        )
            .prop_map(|(fhandle, auth_flavors)| mount::MntRes::Ok {
                fhandle,
                auth_flavors
            }),
        mount_status_fail().prop_map(mount::MntRes::Fail),
    ]
}

fn mount_list() -> impl Strategy<Value = mount::MountList> {
    prop::collection::vec(
        (bytes(mount::MNTNAMLEN as usize), bytes(64)).prop_map(|(hostname, directory)| {
            mount::MountEntry {
                hostname,
                directory,
            }
        }),
        0..8,
    )
    .prop_map(mount::MountList)
}

fn export_list() -> impl Strategy<Value = mount::ExportList> {
    prop::collection::vec(
        (bytes(64), prop::collection::vec(bytes(32), 0..5))
            .prop_map(|(dir, groups)| mount::ExportNode { dir, groups }),
        0..8,
    )
    .prop_map(mount::ExportList)
}

fn mapping() -> impl Strategy<Value = portmap::Mapping> {
    any::<[u32; 4]>().prop_map(|[prog, vers, prot, port]| portmap::Mapping {
        prog,
        vers,
        prot,
        port,
    })
}

fn callit_args() -> impl Strategy<Value = portmap::CallitArgs> {
    (any::<[u32; 3]>(), bytes(256)).prop_map(|([prog, vers, proc_num], args)| portmap::CallitArgs {
        prog,
        vers,
        proc_num,
        args,
    })
}

fn callit_res() -> impl Strategy<Value = portmap::CallitRes> {
    (any::<u32>(), bytes(256)).prop_map(|(port, res)| portmap::CallitRes { port, res })
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// Encodes `value` into segments and joins them into one record.
fn encode_record<T: XdrEncode>(value: &T) -> Bytes {
    let mut enc = XdrEncoder::new();
    value.encode(&mut enc);
    let len = enc.len_bytes();
    let record: Vec<u8> = enc
        .finish()
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    assert_eq!(record.len(), len, "len_bytes agrees with the segments");
    assert_eq!(len % 4, 0, "XDR is a multiple of four bytes");
    Bytes::from(record)
}

type Decode<T> = fn(u32, &mut XdrDecoder) -> XdrResult<Option<T>>;

/// decode(encode(value)) == value, consuming the whole record; strict prefixes are truncated.
fn check_round_trip<T>(value: T, proc_num: u32, decode: Decode<T>) -> Result<(), TestCaseError>
where
    T: XdrEncode + PartialEq + std::fmt::Debug,
{
    let record = encode_record(&value);
    let mut dec = XdrDecoder::new(record.clone());
    let decoded = decode(proc_num, &mut dec).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(decoded.as_ref(), Some(&value));
    prop_assert_eq!(dec.remaining(), 0);

    for len in [record.len().saturating_sub(1), record.len() / 2, 0] {
        if len < record.len() {
            let mut dec = XdrDecoder::new(record.slice(..len));
            let result = decode(proc_num, &mut dec);
            prop_assert!(
                matches!(result, Err(XdrError::Truncated { .. })),
                "prefix of {} bytes of {} decoded as {:?}",
                len,
                record.len(),
                result
            );
        }
    }
    Ok(())
}

fn nfs3_call(call: Nfs3Call) -> Result<(), TestCaseError> {
    let proc_num = call.proc_num();
    check_round_trip(call, proc_num, decode_call)
}

fn nfs3_reply(reply: Nfs3Reply) -> Result<(), TestCaseError> {
    let proc_num = reply.proc_num();
    check_round_trip(reply, proc_num, decode_reply)
}

fn mount_call(call: mount::MountCall) -> Result<(), TestCaseError> {
    let proc_num = call.proc_num();
    check_round_trip(call, proc_num, mount::decode_call)
}

fn mount_reply(reply: mount::MountReply) -> Result<(), TestCaseError> {
    let proc_num = reply.proc_num();
    check_round_trip(reply, proc_num, mount::decode_reply)
}

fn portmap_call(call: portmap::PortmapCall) -> Result<(), TestCaseError> {
    let proc_num = call.proc_num();
    check_round_trip(call, proc_num, portmap::decode_call)
}

fn portmap_reply(reply: portmap::PortmapReply) -> Result<(), TestCaseError> {
    let proc_num = reply.proc_num();
    check_round_trip(reply, proc_num, portmap::decode_reply)
}

// ---------------------------------------------------------------------------------------------
// Round trips.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test] fn getattr_call(a in getattr_args()) { nfs3_call(Nfs3Call::Getattr(a))?; }
    #[test] fn setattr_call(a in setattr_args()) { nfs3_call(Nfs3Call::Setattr(a))?; }
    #[test] fn lookup_call(a in lookup_args()) { nfs3_call(Nfs3Call::Lookup(a))?; }
    #[test] fn access_call(a in access_args()) { nfs3_call(Nfs3Call::Access(a))?; }
    #[test] fn readlink_call(a in readlink_args()) { nfs3_call(Nfs3Call::Readlink(a))?; }
    #[test] fn read_call(a in read_args()) { nfs3_call(Nfs3Call::Read(a))?; }
    #[test] fn write_call(a in write_args()) { nfs3_call(Nfs3Call::Write(a))?; }
    #[test] fn create_call(a in create_args()) { nfs3_call(Nfs3Call::Create(a))?; }
    #[test] fn mkdir_call(a in mkdir_args()) { nfs3_call(Nfs3Call::Mkdir(a))?; }
    #[test] fn symlink_call(a in symlink_args()) { nfs3_call(Nfs3Call::Symlink(a))?; }
    #[test] fn mknod_call(a in mknod_args()) { nfs3_call(Nfs3Call::Mknod(a))?; }
    #[test] fn remove_call(a in remove_args()) { nfs3_call(Nfs3Call::Remove(a))?; }
    #[test] fn rmdir_call(a in rmdir_args()) { nfs3_call(Nfs3Call::Rmdir(a))?; }
    #[test] fn rename_call(a in rename_args()) { nfs3_call(Nfs3Call::Rename(a))?; }
    #[test] fn link_call(a in link_args()) { nfs3_call(Nfs3Call::Link(a))?; }
    #[test] fn readdir_call(a in readdir_args()) { nfs3_call(Nfs3Call::Readdir(a))?; }
    #[test] fn readdirplus_call(a in readdirplus_args()) { nfs3_call(Nfs3Call::Readdirplus(a))?; }
    #[test] fn fsstat_call(a in fsstat_args()) { nfs3_call(Nfs3Call::Fsstat(a))?; }
    #[test] fn fsinfo_call(a in fsinfo_args()) { nfs3_call(Nfs3Call::Fsinfo(a))?; }
    #[test] fn pathconf_call(a in pathconf_args()) { nfs3_call(Nfs3Call::Pathconf(a))?; }
    #[test] fn commit_call(a in commit_args()) { nfs3_call(Nfs3Call::Commit(a))?; }

    #[test] fn getattr_reply(r in getattr_res()) { nfs3_reply(Nfs3Reply::Getattr(r))?; }
    #[test] fn setattr_reply(r in setattr_res()) { nfs3_reply(Nfs3Reply::Setattr(r))?; }
    #[test] fn lookup_reply(r in lookup_res()) { nfs3_reply(Nfs3Reply::Lookup(r))?; }
    #[test] fn access_reply(r in access_res()) { nfs3_reply(Nfs3Reply::Access(r))?; }
    #[test] fn readlink_reply(r in readlink_res()) { nfs3_reply(Nfs3Reply::Readlink(r))?; }
    #[test] fn read_reply(r in read_res()) { nfs3_reply(Nfs3Reply::Read(r))?; }
    #[test] fn write_reply(r in write_res()) { nfs3_reply(Nfs3Reply::Write(r))?; }
    #[test] fn create_reply(r in create_res()) { nfs3_reply(Nfs3Reply::Create(r))?; }
    #[test] fn mkdir_reply(r in create_res()) { nfs3_reply(Nfs3Reply::Mkdir(r))?; }
    #[test] fn symlink_reply(r in create_res()) { nfs3_reply(Nfs3Reply::Symlink(r))?; }
    #[test] fn mknod_reply(r in create_res()) { nfs3_reply(Nfs3Reply::Mknod(r))?; }
    #[test] fn remove_reply(r in remove_res()) { nfs3_reply(Nfs3Reply::Remove(r))?; }
    #[test] fn rmdir_reply(r in remove_res()) { nfs3_reply(Nfs3Reply::Rmdir(r))?; }
    #[test] fn rename_reply(r in rename_res()) { nfs3_reply(Nfs3Reply::Rename(r))?; }
    #[test] fn link_reply(r in link_res()) { nfs3_reply(Nfs3Reply::Link(r))?; }
    #[test] fn readdir_reply(r in readdir_res()) { nfs3_reply(Nfs3Reply::Readdir(r))?; }
    #[test] fn readdirplus_reply(r in readdirplus_res()) { nfs3_reply(Nfs3Reply::Readdirplus(r))?; }
    #[test] fn fsstat_reply(r in fsstat_res()) { nfs3_reply(Nfs3Reply::Fsstat(r))?; }
    #[test] fn fsinfo_reply(r in fsinfo_res()) { nfs3_reply(Nfs3Reply::Fsinfo(r))?; }
    #[test] fn pathconf_reply(r in pathconf_res()) { nfs3_reply(Nfs3Reply::Pathconf(r))?; }
    #[test] fn commit_reply(r in commit_res()) { nfs3_reply(Nfs3Reply::Commit(r))?; }

    #[test] fn mount_mnt_call(a in mnt_args()) { mount_call(mount::MountCall::Mnt(a))?; }
    #[test] fn mount_umnt_call(a in mnt_args()) { mount_call(mount::MountCall::Umnt(a))?; }
    #[test] fn mount_mnt_reply(r in mnt_res()) { mount_reply(mount::MountReply::Mnt(r))?; }
    #[test] fn mount_dump_reply(l in mount_list()) { mount_reply(mount::MountReply::Dump(l))?; }
    #[test] fn mount_export_reply(l in export_list()) { mount_reply(mount::MountReply::Export(l))?; }

    #[test] fn portmap_set_call(m in mapping()) { portmap_call(portmap::PortmapCall::Set(m))?; }
    #[test] fn portmap_unset_call(m in mapping()) { portmap_call(portmap::PortmapCall::Unset(m))?; }
    #[test] fn portmap_getport_call(m in mapping()) { portmap_call(portmap::PortmapCall::Getport(m))?; }
    #[test] fn portmap_callit_call(a in callit_args()) { portmap_call(portmap::PortmapCall::Callit(a))?; }
    #[test] fn portmap_set_reply(b in any::<bool>()) { portmap_reply(portmap::PortmapReply::Set(b))?; }
    #[test] fn portmap_unset_reply(b in any::<bool>()) { portmap_reply(portmap::PortmapReply::Unset(b))?; }
    #[test] fn portmap_getport_reply(p in any::<u32>()) { portmap_reply(portmap::PortmapReply::Getport(p))?; }
    #[test] fn portmap_dump_reply(l in prop::collection::vec(mapping(), 0..16)) {
        portmap_reply(portmap::PortmapReply::Dump(portmap::MappingList(l)))?;
    }
    #[test] fn portmap_callit_reply(r in callit_res()) { portmap_reply(portmap::PortmapReply::Callit(r))?; }
}

#[test]
fn void_procedures_round_trip() {
    let ok = |r: Result<(), TestCaseError>| r.unwrap();
    ok(nfs3_call(Nfs3Call::Null));
    ok(nfs3_reply(Nfs3Reply::Null));
    for call in [
        mount::MountCall::Null,
        mount::MountCall::Dump,
        mount::MountCall::UmntAll,
        mount::MountCall::Export,
    ] {
        ok(mount_call(call));
    }
    for reply in [
        mount::MountReply::Null,
        mount::MountReply::Umnt,
        mount::MountReply::UmntAll,
    ] {
        ok(mount_reply(reply));
    }
    ok(portmap_call(portmap::PortmapCall::Null));
    ok(portmap_call(portmap::PortmapCall::Dump));
    ok(portmap_reply(portmap::PortmapReply::Null));
}

// ---------------------------------------------------------------------------------------------
// Decoding garbage never panics.

fn proc_num() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..24, 1 => any::<u32>()]
}

/// Random bytes, biased towards the small words (0, 1, 2, ...) that keep decoders going.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        3 => (0u32..8).prop_map(|w| w.to_be_bytes().to_vec()),
        1 => any::<[u8; 4]>().prop_map(|w| w.to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(word, 0..128).prop_map(|words| words.concat())
}

fn decode_all(proc_num: u32, record: Bytes, max_data_bytes: u32) {
    let dec = XdrDecoder::new(record).with_max_data_bytes(max_data_bytes);
    let _ = decode_call(proc_num, &mut dec.clone());
    let _ = decode_reply(proc_num, &mut dec.clone());
    let _ = mount::decode_call(proc_num, &mut dec.clone());
    let _ = mount::decode_reply(proc_num, &mut dec.clone());
    let _ = portmap::decode_call(proc_num, &mut dec.clone());
    let _ = portmap::decode_reply(proc_num, &mut dec.clone());
}

/// Flips, truncates or extends a valid encoding.
fn mutate(record: &Bytes, at: usize, byte: u8, how: u8) -> Bytes {
    let mut bytes = record.to_vec();
    if bytes.is_empty() {
        return Bytes::from(vec![byte; at % 8]);
    }
    let at = at % bytes.len();
    match how % 3 {
        0 => bytes[at] ^= byte.max(1),
        1 => bytes.truncate(at),
        _ => bytes.insert(at, byte),
    }
    Bytes::from(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        proc_num in proc_num(),
        record in garbage(),
        max_data_bytes in prop_oneof![Just(u32::MAX), 0u32..4096],
    ) {
        decode_all(proc_num, Bytes::from(record), max_data_bytes);
    }

    #[test]
    fn mutated_replies_never_panic(
        reply in prop_oneof![
            readdirplus_res().prop_map(Nfs3Reply::Readdirplus),
            readdir_res().prop_map(Nfs3Reply::Readdir),
            lookup_res().prop_map(Nfs3Reply::Lookup),
            read_res().prop_map(Nfs3Reply::Read),
            fsinfo_res().prop_map(Nfs3Reply::Fsinfo),
        ],
        at in any::<usize>(),
        byte in any::<u8>(),
        how in any::<u8>(),
        wrong_proc in any::<bool>(),
    ) {
        let record = mutate(&encode_record(&reply), at, byte, how);
        let proc_num = if wrong_proc { u32::from(byte) % 24 } else { reply.proc_num() };
        decode_all(proc_num, record, 4096);
    }

    #[test]
    fn mutated_calls_never_panic(
        call in prop_oneof![
            write_args().prop_map(Nfs3Call::Write),
            create_args().prop_map(Nfs3Call::Create),
            setattr_args().prop_map(Nfs3Call::Setattr),
            mknod_args().prop_map(Nfs3Call::Mknod),
            symlink_args().prop_map(Nfs3Call::Symlink),
        ],
        at in any::<usize>(),
        byte in any::<u8>(),
        how in any::<u8>(),
    ) {
        let record = mutate(&encode_record(&call), at, byte, how);
        decode_all(call.proc_num(), record, 4096);
    }

    #[test]
    fn mutated_mount_replies_never_panic(
        reply in prop_oneof![
            mnt_res().prop_map(mount::MountReply::Mnt),
            mount_list().prop_map(mount::MountReply::Dump),
            export_list().prop_map(mount::MountReply::Export),
        ],
        at in any::<usize>(),
        byte in any::<u8>(),
        how in any::<u8>(),
    ) {
        let record = mutate(&encode_record(&reply), at, byte, how);
        decode_all(reply.proc_num(), record, 4096);
    }
}
