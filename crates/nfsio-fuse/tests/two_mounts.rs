//! Two mounts of one export, each through its own client (and so its own cache and its own
//! kernel caches): the Linux NFS client's consistency rules between them.
//!
//! - Close-to-open: a file written and closed through mount A reads exactly, byte for byte,
//!   through mount B after an open, also when B had read (and cached) the old contents just
//!   before and the new contents are longer or shorter.
//! - A rename through A is seen through B within the attribute timeout (B mounted with
//!   `actimeo=1`): polled with a deadline of that lifetime plus a margin, and it must not
//!   take longer.
//!
//! The server is `nfsio serve`'s, in-process, on a local store (`common::Fixture`); both
//! mounts are always unmounted. Skipped with one line without root or /dev/fuse.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::Fixture;
use nfsio_fuse::Settings;

/// Reproducible bytes of `len` for version `seed` of a file.
fn contents(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// Checks that `b` reads exactly `want`, saying which step failed.
fn assert_reads(path: &std::path::Path, want: &[u8], step: &str) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{step}: read {}: {e}", path.display()));
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{step}: mount B read {} bytes, mount A wrote {} (first difference at byte {at})",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn a_file_closed_on_one_mount_reads_exactly_on_the_other_after_open() {
    let Some(a) = Fixture::local() else { return };
    let b = a.second_mount(Settings::default());
    // Versions of one file: first, longer, shorter, then longer again with the same length
    // as a later one (only the bytes differ).
    let versions: [(usize, u8); 5] = [
        (100_000, 1),
        (3 << 20, 2),
        (4096 + 17, 3),
        (1 << 20, 4),
        (1 << 20, 5),
    ];
    for (step, (len, seed)) in versions.into_iter().enumerate() {
        let data = contents(len, seed);
        // Written and closed through A (std::fs::write opens with O_TRUNC).
        fs::write(a.path("shared.bin"), &data).expect("write through A");
        // B stats and reads right away, well inside its attribute lifetime of what it saw
        // at the last step: an open must still show the new file.
        assert_reads(
            &b.path("shared.bin"),
            &data,
            &format!("version {step} ({len} bytes)"),
        );
        // A reads B's view back too: both sides agree.
        assert_reads(
            &a.path("shared.bin"),
            &data,
            &format!("version {step} on A"),
        );
    }

    // An overwrite in place through B (no truncate), read through A after open.
    let mut data = contents(3 << 20, 9);
    fs::write(b.path("shared.bin"), &data).expect("write through B");
    assert_reads(&a.path("shared.bin"), &data, "B's full write, on A");
    let patch = contents(70_000, 11);
    {
        use std::os::unix::fs::FileExt;
        let file = fs::OpenOptions::new()
            .write(true)
            .open(b.path("shared.bin"))
            .expect("open on B");
        file.write_all_at(&patch, 1_000_000).expect("write_at on B");
    }
    data[1_000_000..1_070_000].copy_from_slice(&patch);
    assert_reads(&a.path("shared.bin"), &data, "B's write in place, on A");
}

#[test]
fn a_rename_on_one_mount_shows_on_the_other_within_the_attribute_timeout() {
    let Some(a) = Fixture::local() else { return };
    // `-o actimeo=1` on B: the default directory lifetime (acdirmin, 30 s) would make each
    // round wait half a minute.
    let settings = Settings::with_lifetimes(Duration::from_secs(1));
    let ttl = settings.entry_ttl().max(settings.negative_ttl());
    let b = a.second_mount(settings);
    // Generous for a busy machine, but far below what a cache that never expires would
    // show: the kernel's cached entries expire after `ttl`.
    let margin = Duration::from_secs(2);
    fs::create_dir(a.path("dir")).expect("mkdir on A");
    fs::write(a.path("dir/old.txt"), b"renamed\n").expect("write on A");
    for round in 0..3 {
        let (from, to) = if round % 2 == 0 {
            ("dir/old.txt", "dir/new.txt")
        } else {
            ("dir/new.txt", "dir/old.txt")
        };
        // B looks both names up first, so that its kernel caches the entry and the
        // negative entry.
        assert_eq!(fs::read(b.path(from)).expect("read on B"), b"renamed\n");
        assert!(!b.path(to).exists(), "round {round}: {to} not yet there");
        fs::rename(a.path(from), a.path(to)).expect("rename on A");
        let renamed = Instant::now();
        let deadline = renamed + ttl + margin;
        loop {
            let new_seen = b.path(to).exists();
            let old_gone = !b.path(from).exists();
            if new_seen && old_gone {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: B still shows the old names {:?} after the rename on A (TTL \
                 {ttl:?}; new seen: {new_seen}, old gone: {old_gone})",
                renamed.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(fs::read(b.path(to)).expect("read on B"), b"renamed\n");
        eprintln!(
            "round {round}: the rename showed on B after {:?} (TTL {ttl:?})",
            renamed.elapsed()
        );
    }
}
