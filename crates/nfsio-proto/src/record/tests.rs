//! The record-marking codec without a stream: framing, reassembly at any feeding, bounds.

use proptest::prelude::*;

use super::*;

/// The wire form of `records` framed at `max_fragment_bytes`.
fn wire_of(records: &[Vec<Bytes>], max_fragment_bytes: u32) -> Vec<u8> {
    let frames = RecordFrames::new(records, max_fragment_bytes);
    let wire: Vec<u8> = frames
        .io_slices(records)
        .iter()
        .flat_map(|slice| slice.iter().copied())
        .collect();
    assert_eq!(wire.len(), frames.wire_len_bytes());
    wire
}

/// Every record `decoder` yields after being fed `wire` in pieces of `step` bytes.
fn decode_all(decoder: &mut RecordDecoder, wire: &[u8], step: usize) -> Vec<Bytes> {
    let mut records = Vec::new();
    for piece in wire.chunks(step.max(1)) {
        decoder.feed(piece);
        while let Some(record) = decoder.next_record().expect("within the bound") {
            records.push(record);
        }
    }
    records
}

#[test]
fn marks_round_trip() {
    assert_eq!(record_mark(0, true), [0x80, 0, 0, 0]);
    assert_eq!(record_mark(0x1234, false), [0, 0, 0x12, 0x34]);
    assert_eq!(
        parse_record_mark([0xff, 0xff, 0xff, 0xff]),
        (true, MAX_FRAGMENT_BYTES)
    );
    assert_eq!(parse_record_mark([0, 0, 0, 5]), (false, 5));
    let mark = FragmentMark::new(77, true);
    assert_eq!(FragmentMark::from_bytes(mark.to_bytes()), mark);
    assert_eq!(
        FragmentMark::peek(&[0x80, 0, 0]),
        None,
        "three bytes are no mark"
    );
    assert_eq!(
        FragmentMark::peek(&[0x80, 0, 0, 9, 1]),
        Some(FragmentMark::new(9, true))
    );
}

#[test]
fn slices_interleave_marks_without_copying() {
    let a = Bytes::from_static(b"0123456789");
    let b = Bytes::from_static(b"abcde");
    let records = [[a.clone(), b.clone()]];
    let frames = RecordFrames::new(&records, 4);
    assert_eq!(frames.marks().len(), 4);
    let slices = frames.io_slices(&records);
    // mark,0123 mark,4567 mark,89,ab mark,cde
    let lens: Vec<usize> = slices.iter().map(|s| s.len()).collect();
    assert_eq!(lens, [4, 4, 4, 4, 4, 2, 2, 4, 3]);
    assert_eq!(slices[1].as_ptr(), a.as_ptr(), "payload must be borrowed");
    assert_eq!(&slices[8][..], b"cde");
    assert_eq!(slices[8].as_ptr(), b[2..].as_ptr());
}

#[test]
fn an_empty_record_is_one_empty_last_fragment() {
    let records = vec![vec![], vec![Bytes::new()], vec![Bytes::from_static(b"x")]];
    let wire = wire_of(&records, 7);
    assert_eq!(wire, [0x80, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0, 0, 1, b'x']);
    let mut decoder = RecordDecoder::new(16);
    let got = decode_all(&mut decoder, &wire, 1);
    assert_eq!(got, [&b""[..], b"", b"x"]);
    assert_eq!(decoder.end_of_stream(), Ok(()));
}

#[test]
fn the_bound_is_checked_before_the_body_arrives() {
    let mut decoder = RecordDecoder::new(1000);
    decoder.feed(&record_mark(MAX_FRAGMENT_BYTES, true));
    assert_eq!(
        decoder.peek_mark(),
        Some(FragmentMark::new(MAX_FRAGMENT_BYTES, true))
    );
    assert_eq!(
        decoder.next_record(),
        Err(RecordError::TooLarge {
            len_bytes: u64::from(MAX_FRAGMENT_BYTES),
            max_bytes: 1000
        })
    );
    assert_eq!(decoder.buffered_bytes(), 4, "nothing taken");
    assert!(decoder.buffer_capacity_bytes() < 1024, "nothing allocated");

    // The bound is on the record: fragments add up.
    let wire = wire_of(&[vec![Bytes::from(vec![1u8; 1200])]], 600);
    let mut decoder = RecordDecoder::new(1000);
    decoder.feed(&wire);
    assert_eq!(
        decoder.next_record(),
        Err(RecordError::TooLarge {
            len_bytes: 1200,
            max_bytes: 1000
        })
    );
    let mut decoder = RecordDecoder::new(1200);
    decoder.feed(&wire);
    assert_eq!(decoder.next_record().unwrap().unwrap().len(), 1200);
}

#[test]
fn a_huge_announcement_grows_the_buffer_only_by_what_arrives() {
    let mut decoder = RecordDecoder::new(u32::MAX);
    decoder.feed(&record_mark(MAX_FRAGMENT_BYTES, true));
    decoder.feed(&[7u8; 100]);
    assert_eq!(decoder.next_record(), Ok(None));
    assert_eq!(decoder.missing_bytes(), MAX_FRAGMENT_BYTES as usize - 100);
    let room = decoder.read_buffer(decoder.missing_bytes());
    assert!(
        room.capacity() <= 2 * READ_CHUNK_BYTES,
        "{}",
        room.capacity()
    );
    assert_eq!(
        decoder.end_of_stream(),
        Err(RecordError::UnexpectedEof {
            received_bytes: 104
        })
    );
}

/// Feeds `record_bytes` of one single-fragment record the way a stream reader does, in
/// reads of at most `step` bytes into [`RecordDecoder::read_buffer`], optionally reserving
/// the fragment once its mark is here; returns the largest capacity the buffer reached.
fn peak_capacity_reading(record_bytes: usize, step: usize, reserve: bool) -> usize {
    let wire = wire_of(
        &[vec![Bytes::from(vec![9u8; record_bytes])]],
        MAX_FRAGMENT_BYTES,
    );
    let mut decoder = RecordDecoder::new(8 << 20);
    let mut peak_bytes = 0;
    let mut fed = 0;
    loop {
        if reserve {
            decoder.reserve_fragment();
        }
        if let Some(record) = decoder.next_record().unwrap() {
            assert_eq!(record.len(), record_bytes);
            return peak_bytes;
        }
        let room = decoder.read_buffer(decoder.missing_bytes());
        let n = step.min(wire.len() - fed).min(room.capacity() - room.len());
        room.extend_from_slice(&wire[fed..fed + n]);
        fed += n;
        peak_bytes = peak_bytes.max(decoder.buffer_capacity_bytes());
    }
}

#[test]
fn a_reserved_fragment_arrives_into_room_of_its_own_size() {
    let record_bytes = (1 << 20) + 100;
    // Room for the record and the marks around it, and no more: in particular the end of
    // the record is not read into a buffer grown for a read of the usual size (which
    // copied the whole record once more, near its end).
    for step in [4096, 16 << 10, 64 << 10, 1 << 20] {
        let reserved = peak_capacity_reading(record_bytes, step, true);
        assert!(
            reserved <= record_bytes + 2 * RECORD_MARK_BYTES + MIN_READ_SPACE_BYTES,
            "reading in steps of {step} bytes: {reserved} bytes of room for a {record_bytes}-byte record"
        );
    }
    let reserved = peak_capacity_reading(record_bytes, 64 << 10, true);
    let grown = peak_capacity_reading(record_bytes, 64 << 10, false);
    assert!(
        grown > reserved,
        "growing step by step ({grown} bytes) is what reserving avoids ({reserved} bytes)"
    );
}

#[test]
fn a_refused_fragment_reserves_nothing() {
    let mut decoder = RecordDecoder::new(1 << 20);
    decoder.feed(&record_mark(2 << 20, true));
    decoder.reserve_fragment();
    assert!(decoder.buffer_capacity_bytes() < 2 * READ_CHUNK_BYTES);
    assert!(decoder.next_record().is_err());
}

#[test]
fn the_stream_may_end_only_between_records() {
    let wire = wire_of(&[vec![Bytes::from_static(b"hello world")]], 4);
    for cut in 1..wire.len() {
        let mut decoder = RecordDecoder::new(1 << 20);
        decoder.feed(&wire[..cut]);
        assert_eq!(decoder.next_record(), Ok(None), "cut {cut}");
        assert_eq!(
            decoder.end_of_stream(),
            Err(RecordError::UnexpectedEof {
                received_bytes: cut as u64
            }),
            "cut {cut}"
        );
    }
    assert_eq!(RecordDecoder::new(10).end_of_stream(), Ok(()));
}

#[test]
fn a_partly_read_record_waits_where_it_stopped() {
    let wire = wire_of(&[vec![Bytes::from_static(b"abcdefgh")]], 3);
    let mut decoder = RecordDecoder::new(100);
    decoder.feed(&wire[..12]);
    // The first fragment (3 bytes) taken, the second's mark taken and a byte of its body.
    assert_eq!(decoder.next_record(), Ok(None));
    assert_eq!(decoder.peek_mark(), Some(FragmentMark::new(3, false)));
    assert_eq!(decoder.missing_bytes(), 2, "one byte of it is here");
    decoder.feed(&wire[12..]);
    assert_eq!(&decoder.next_record().unwrap().unwrap()[..], b"abcdefgh");
    assert_eq!(decoder.into_buffered().len(), 0);
}

#[test]
fn fragments_walk_the_whole_ones() {
    let mut wire = wire_of(&[vec![Bytes::from_static(b"one")], vec![]], 100);
    wire.extend_from_slice(&record_mark(10, true));
    wire.extend_from_slice(b"cut");
    let mut walk = fragments(&wire);
    assert_eq!(walk.next(), Some((FragmentMark::new(3, true), &b"one"[..])));
    assert_eq!(walk.next(), Some((FragmentMark::new(0, true), &b""[..])));
    assert_eq!(walk.next(), None, "the third is not whole");
    assert_eq!(walk.remainder().len(), 7);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_record_survives_any_fragmenting_and_any_feeding(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6),
        max_fragment_bytes in 1u32..64,
        step in 1usize..80,
    ) {
        let segmented: Vec<Vec<Bytes>> = records
            .iter()
            .map(|data| data.chunks(17).map(Bytes::copy_from_slice).collect())
            .collect();
        let wire = wire_of(&segmented, max_fragment_bytes);
        for (_, body) in fragments(&wire) {
            prop_assert!(body.len() <= max_fragment_bytes as usize);
        }
        let mut decoder = RecordDecoder::new(300);
        let got = decode_all(&mut decoder, &wire, step);
        prop_assert_eq!(got.len(), records.len());
        for (got, want) in got.iter().zip(&records) {
            prop_assert_eq!(&got[..], &want[..]);
        }
        prop_assert_eq!(decoder.end_of_stream(), Ok(()));
    }

    #[test]
    fn garbage_never_panics_and_never_exceeds_the_bound(
        wire in prop::collection::vec(any::<u8>(), 0..600),
        step in 1usize..50,
    ) {
        let mut decoder = RecordDecoder::new(64);
        for piece in wire.chunks(step) {
            decoder.feed(piece);
            match decoder.next_record() {
                Ok(Some(record)) => prop_assert!(record.len() <= 64),
                Ok(None) => {}
                Err(RecordError::TooLarge { len_bytes, max_bytes }) => {
                    prop_assert!(len_bytes > u64::from(max_bytes));
                    break;
                }
                Err(err) => prop_assert!(false, "{err:?}"),
            }
        }
        let _ = fragments(&wire).count();
    }
}

/// Feeds `wire` to `decoder` the way the client's transport reads a stream: the next
/// fragment reserved once its mark is here, then reads of at most `step` bytes into
/// [`RecordDecoder::read_buffer`]; each record is handed to `on_record` as it completes.
fn read_like_a_client(
    decoder: &mut RecordDecoder,
    wire: &[u8],
    step: usize,
    mut on_record: impl FnMut(Bytes),
) {
    let mut fed = 0;
    loop {
        decoder.reserve_fragment();
        while let Some(record) = decoder.next_record().expect("within the bound") {
            on_record(record);
            decoder.reserve_fragment();
        }
        if fed == wire.len() {
            return;
        }
        let room = decoder.read_buffer(decoder.missing_bytes());
        let n = step.min(wire.len() - fed).min(room.capacity() - room.len());
        room.extend_from_slice(&wire[fed..fed + n]);
        fed += n;
    }
}

/// `count` single-fragment records of `len_bytes`, record `i` filled with byte `i`.
fn filled_records(count: usize, len_bytes: usize) -> Vec<u8> {
    let records: Vec<Vec<Bytes>> = (0..count)
        .map(|i| vec![Bytes::from(vec![i as u8; len_bytes])])
        .collect();
    wire_of(&records, MAX_FRAGMENT_BYTES)
}

#[test]
fn kept_buffers_are_reused_once_their_records_are_dropped() {
    let (count, len_bytes) = (8, (1 << 20) + 100);
    let wire = filled_records(count, len_bytes);
    let mut decoder = RecordDecoder::with_spare_buffers(8 << 20, 4);
    let mut seen = 0;
    read_like_a_client(&mut decoder, &wire, 64 << 10, |record| {
        assert!(record.iter().all(|&b| b == seen as u8), "record {seen}");
        seen += 1;
    });
    assert_eq!(seen, count);
    assert!(
        decoder.spare_buffers_reused() >= count as u64 - 2,
        "{} of {count} long records arrived into a kept buffer",
        decoder.spare_buffers_reused()
    );

    let mut plain = RecordDecoder::new(8 << 20);
    read_like_a_client(&mut plain, &wire, 64 << 10, drop);
    assert_eq!(
        plain.spare_buffers_reused(),
        0,
        "a decoder without spares keeps none"
    );
}

#[test]
fn a_buffer_whose_record_is_still_held_is_never_reused() {
    let (count, len_bytes) = (12, (1 << 20) + 100);
    let wire = filled_records(count, len_bytes);
    for step in [4096, 64 << 10, 1 << 20] {
        let mut decoder = RecordDecoder::with_spare_buffers(8 << 20, 3);
        // Every third record is kept to the end; the others are dropped at once, so their
        // buffers are free to be reused beside the held ones.
        let mut held = Vec::new();
        let mut index = 0;
        read_like_a_client(&mut decoder, &wire, step, |record| {
            if index % 3 == 0 {
                held.push((index, record));
            }
            index += 1;
        });
        assert_eq!(index, count);
        assert!(
            decoder.spare_buffers_reused() > 0,
            "step {step}: nothing reused"
        );
        for (index, record) in &held {
            assert_eq!(record.len(), len_bytes);
            assert!(
                record.iter().all(|&b| b == *index as u8),
                "step {step}: record {index} was overwritten by a later one"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever records arrive (long ones kept in spare buffers, short ones between them),
    /// in whatever reads, and whichever of them a reader keeps while the rest are dropped:
    /// every record reads as sent, to the end. A reused buffer never held a live record.
    #[test]
    fn spare_buffers_never_change_a_record_anyone_holds(
        lens in prop::collection::vec(
            prop_oneof![0usize..2_000, 60_000usize..300_000],
            1..14,
        ),
        keep in prop::collection::vec(any::<bool>(), 14),
        step in prop_oneof![1usize..5_000, 5_000usize..400_000],
        spare_count in 0usize..5,
    ) {
        let records: Vec<Vec<Bytes>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| vec![Bytes::from(vec![i as u8 ^ 0x5a; len])])
            .collect();
        let wire = wire_of(&records, MAX_FRAGMENT_BYTES);
        let mut decoder = RecordDecoder::with_spare_buffers(1 << 20, spare_count);
        let mut held = Vec::new();
        let mut index = 0;
        read_like_a_client(&mut decoder, &wire, step, |record| {
            assert_eq!(record.len(), lens[index], "record {index}");
            assert!(record.iter().all(|&b| b == index as u8 ^ 0x5a), "record {index}");
            if keep[index] {
                held.push((index, record));
            }
            index += 1;
        });
        prop_assert_eq!(index, lens.len());
        for (index, record) in &held {
            prop_assert_eq!(record.len(), lens[*index]);
            prop_assert!(
                record.iter().all(|&b| b == *index as u8 ^ 0x5a),
                "record {} changed while held",
                index
            );
        }
    }
}
