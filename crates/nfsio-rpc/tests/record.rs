//! Record marking (RFC 5531 §11): fragmenting, reassembly, bounds, end-of-stream handling.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use nfsio_rpc::record::{
    RecordError, RecordReader, parse_record_mark, read_record, record_mark, write_record,
    write_records,
};
use proptest::prelude::*;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Splits `data` into segments at the given cut points.
fn segments_of(data: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.clamp(start, data.len());
        out.push(Bytes::copy_from_slice(&data[start..cut]));
        start = cut;
    }
    out.push(Bytes::copy_from_slice(&data[start..]));
    out
}

/// Parses the wire form into (last?, fragment payload) pairs.
fn fragments(mut wire: &[u8]) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let (last, len) = parse_record_mark([wire[0], wire[1], wire[2], wire[3]]);
        let len = len as usize;
        out.push((last, wire[4..4 + len].to_vec()));
        wire = &wire[4 + len..];
    }
    out
}

/// A writer that counts write calls and can pretend not to support vectored writes.
#[derive(Default)]
struct CountingWriter {
    data: Vec<u8>,
    writes: usize,
    vectored: bool,
}

impl AsyncWrite for CountingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writes += 1;
        self.data.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.writes += 1;
        let mut n = 0;
        for buf in bufs {
            self.data.extend_from_slice(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn multi_fragment_round_trip() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let segments = segments_of(&data, &[3, 100, 101, 640]);
    let mut wire = CountingWriter {
        vectored: true,
        ..Default::default()
    };
    write_record(&mut wire, &segments, 7).await.unwrap();

    let frags = fragments(&wire.data);
    assert_eq!(frags.len(), 143, "ceil(1000 / 7) fragments");
    for (i, (last, payload)) in frags.iter().enumerate() {
        assert_eq!(*last, i == 142, "only the final fragment is last");
        assert_eq!(payload.len(), if i == 142 { 6 } else { 7 });
    }
    assert_eq!(wire.data.len(), 1000 + 143 * 4);

    let mut slice = &wire.data[..];
    let record = read_record(&mut slice, 1000).await.unwrap().unwrap();
    assert_eq!(&record[..], &data[..]);
    assert_eq!(read_record(&mut slice, 1000).await.unwrap(), None);

    let mut reader = RecordReader::new(&wire.data[..], 1000);
    let record = reader.read_record().await.unwrap().unwrap();
    assert_eq!(&record[..], &data[..]);
    assert!(reader.read_record().await.unwrap().is_none());
}

#[tokio::test]
async fn eof_inside_a_record_is_an_error() {
    let mut wire = Vec::new();
    write_record(&mut wire, &[Bytes::from_static(b"hello world")], 4)
        .await
        .unwrap();
    // Every proper prefix of the record that is not empty ends inside it: inside a mark,
    // inside a fragment body, or between a non-last fragment and the next.
    for cut in 1..wire.len() {
        let mut slice = &wire[..cut];
        let err = read_record(&mut slice, 1 << 20).await.unwrap_err();
        assert!(
            matches!(err, RecordError::UnexpectedEof { received_bytes } if received_bytes == cut as u64),
            "cut {cut}: {err:?}"
        );
        let mut reader = RecordReader::new(&wire[..cut], 1 << 20);
        let err = reader.read_record().await.unwrap_err();
        assert!(
            matches!(err, RecordError::UnexpectedEof { .. }),
            "cut {cut}: {err:?}"
        );
    }
    let mut empty: &[u8] = &[];
    assert!(read_record(&mut empty, 10).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn oversized_announcement_is_rejected_before_the_body() {
    // Only the mark is ever sent and the stream stays open: a reader that waited for the
    // body would block, and the (paused-clock) timeout would fire.
    let (mut client, mut server) = tokio::io::duplex(64);
    client
        .write_all(&record_mark(0x7fff_ffff, true))
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), read_record(&mut server, 1 << 22))
        .await
        .expect("read_record must not wait for the body");
    assert!(matches!(
        result,
        Err(RecordError::TooLarge {
            len_bytes: 0x7fff_ffff,
            max_bytes: 0x40_0000
        })
    ));

    client.write_all(&record_mark(1001, true)).await.unwrap();
    let mut reader = RecordReader::new(server, 1000);
    let result = tokio::time::timeout(Duration::from_secs(5), reader.read_record())
        .await
        .expect("RecordReader must not wait for the body");
    assert!(matches!(
        result,
        Err(RecordError::TooLarge {
            len_bytes: 1001,
            max_bytes: 1000
        })
    ));
    assert!(reader.buffer_capacity_bytes() < 1 << 20);
    drop(client);
}

#[tokio::test]
async fn record_length_is_the_sum_of_its_fragments() {
    let mut wire = Vec::new();
    write_record(&mut wire, &[Bytes::from(vec![1u8; 1200])], 600)
        .await
        .unwrap();
    let mut slice = &wire[..];
    let err = read_record(&mut slice, 1000).await.unwrap_err();
    assert!(matches!(
        err,
        RecordError::TooLarge {
            len_bytes: 1200,
            max_bytes: 1000
        }
    ));
    let mut reader = RecordReader::new(&wire[..], 1000);
    assert!(matches!(
        reader.read_record().await,
        Err(RecordError::TooLarge {
            len_bytes: 1200,
            ..
        })
    ));
    // Exactly at the maximum is fine.
    let mut reader = RecordReader::new(&wire[..], 1200);
    assert_eq!(reader.read_record().await.unwrap().unwrap().len(), 1200);
}

#[tokio::test]
async fn zero_length_records() {
    let mut wire = Vec::new();
    write_record(&mut wire, &[], 7).await.unwrap();
    write_record(&mut wire, &[Bytes::new(), Bytes::new()], 7)
        .await
        .unwrap();
    write_record(&mut wire, &[Bytes::from_static(b"x")], 7)
        .await
        .unwrap();
    assert_eq!(
        wire,
        [0x80, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0, 0, 1, b'x'],
        "an empty record is one empty last fragment"
    );
    // An empty non-last fragment in front of a record is legal too.
    wire.extend_from_slice(&record_mark(0, false));
    wire.extend_from_slice(&record_mark(2, true));
    wire.extend_from_slice(b"yz");

    let mut slice = &wire[..];
    let mut reader = RecordReader::new(&wire[..], 16);
    for expected in [&b""[..], b"", b"x", b"yz"] {
        assert_eq!(
            &read_record(&mut slice, 16).await.unwrap().unwrap()[..],
            expected
        );
        assert_eq!(&reader.read_record().await.unwrap().unwrap()[..], expected);
    }
    assert!(read_record(&mut slice, 16).await.unwrap().is_none());
    assert!(reader.read_record().await.unwrap().is_none());
}

#[tokio::test]
async fn a_batch_is_one_vectored_write() {
    let records: Vec<Vec<Bytes>> = (0..50u8)
        .map(|i| {
            vec![
                Bytes::from(vec![i; 12]),
                Bytes::from(vec![i.wrapping_add(1); 2000]),
            ]
        })
        .collect();
    let mut wire = CountingWriter {
        vectored: true,
        ..Default::default()
    };
    write_records(&mut wire, &records, u32::MAX).await.unwrap();
    assert_eq!(wire.writes, 1, "50 records, 150 slices: one writev");

    let mut plain = CountingWriter::default();
    write_records(&mut plain, &records, u32::MAX).await.unwrap();
    assert_eq!(plain.writes, 1, "gathered into one write");
    assert_eq!(plain.data, wire.data);

    let mut reader = RecordReader::new(&wire.data[..], 4096);
    for record in &records {
        let got = reader.read_record().await.unwrap().unwrap();
        assert_eq!(got, record.concat());
    }
    assert!(reader.read_record().await.unwrap().is_none());
}

#[tokio::test]
async fn more_slices_than_iov_max_are_written_in_several_calls() {
    // 600 records in 7-byte fragments of 30 bytes: 5 marks + 5 slices each = 6000 slices.
    let records: Vec<[Bytes; 1]> = (0..600u32)
        .map(|i| [Bytes::from(vec![(i % 256) as u8; 30])])
        .collect();
    let mut wire = CountingWriter {
        vectored: true,
        ..Default::default()
    };
    write_records(&mut wire, &records, 7).await.unwrap();
    assert_eq!(wire.writes, 6000usize.div_ceil(1024));
    let mut reader = RecordReader::new(&wire.data[..], 30);
    for record in &records {
        assert_eq!(reader.read_record().await.unwrap().unwrap(), record[0]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_record_survives_any_fragmenting(
        records in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..300), prop::collection::vec(0usize..300, 0..4)),
            1..6,
        ),
        max_fragment_bytes in 1u32..64,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let segmented: Vec<Vec<Bytes>> = records
                .iter()
                .map(|(data, cuts)| {
                    let mut cuts = cuts.clone();
                    cuts.sort_unstable();
                    segments_of(data, &cuts)
                })
                .collect();
            let mut wire = Vec::new();
            write_records(&mut wire, &segmented, max_fragment_bytes).await.unwrap();
            for (last, payload) in fragments(&wire) {
                prop_assert!(payload.len() <= max_fragment_bytes as usize);
                let _ = last;
            }
            let mut slice = &wire[..];
            let mut reader = RecordReader::new(&wire[..], 300);
            for (data, _) in &records {
                prop_assert_eq!(&read_record(&mut slice, 300).await.unwrap().unwrap()[..], &data[..]);
                prop_assert_eq!(&reader.read_record().await.unwrap().unwrap()[..], &data[..]);
            }
            prop_assert!(read_record(&mut slice, 300).await.unwrap().is_none());
            prop_assert!(reader.read_record().await.unwrap().is_none());
            Ok(())
        })?;
    }
}
