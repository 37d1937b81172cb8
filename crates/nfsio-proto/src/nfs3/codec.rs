//! Field codecs and the `xdr_struct!` macro shared by the NFSv3, MOUNT and portmap modules.
//!
//! Most protocol structures are a plain sequence of fields, each encoded with its own
//! [`XdrEncode`]/[`XdrDecode`] implementation. The exceptions are byte strings, whose bound
//! depends on what they are (a file name, a path, a READ/WRITE payload), and XDR linked lists.
//! Those fields name a [`FieldCodec`] instead, so that every bound is written down exactly once.

use bytes::Bytes;

use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrError, XdrResult};

/// Encodes and decodes a field of type `T` in a way that its type alone does not determine.
pub(crate) trait FieldCodec<T> {
    /// Appends the field.
    fn encode_field(value: &T, enc: &mut XdrEncoder);
    /// Decodes the field, within its bound.
    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<T>;
}

/// `filename3`: at most [`super::MAX_PATH_BYTES`] when decoded (a server answers names over
/// [`super::MAX_NAME_BYTES`] with NFS3ERR_NAMETOOLONG).
pub(crate) struct Name;

impl FieldCodec<Bytes> for Name {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        dec.get_opaque("filename3", super::MAX_PATH_BYTES)
    }
}

/// `nfspath3`: at most [`super::MAX_PATH_BYTES`].
pub(crate) struct Path;

impl FieldCodec<Bytes> for Path {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        dec.get_opaque("nfspath3", super::MAX_PATH_BYTES)
    }
}

/// READ/WRITE payload: encoded as a shared segment (zero-copy), decoded as a slice of the
/// record bounded by the decoder's negotiated [`XdrDecoder::max_data_bytes`].
pub(crate) struct Payload;

impl FieldCodec<Bytes> for Payload {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque_shared(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        let max = dec.max_data_bytes();
        dec.get_opaque("data", max)
    }
}

/// Upper bound on the number of items decoded from one XDR linked list.
///
/// Every item consumes wire bytes, so a list is already bounded by its record; this bound only
/// keeps an absurd (but well-formed) record from turning into an absurd allocation.
pub(crate) const MAX_LIST_ITEMS: usize = 1 << 18;

/// An XDR linked list (`*T` whose `T` ends with a `*T next` pointer), as a `Vec<T>`.
///
/// On the wire: `TRUE item TRUE item ... FALSE`.
pub(crate) struct List;

impl<T: XdrEncode + XdrDecode> FieldCodec<Vec<T>> for List {
    fn encode_field(value: &Vec<T>, enc: &mut XdrEncoder) {
        encode_list(value, enc, |item, enc| item.encode(enc));
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Vec<T>> {
        decode_list(dec, "list", MAX_LIST_ITEMS, T::decode)
    }
}

/// Encodes `items` as an XDR linked list with `encode_item`.
pub(crate) fn encode_list<T>(
    items: &[T],
    enc: &mut XdrEncoder,
    mut encode_item: impl FnMut(&T, &mut XdrEncoder),
) {
    for item in items {
        enc.put_bool(true);
        encode_item(item, enc);
    }
    enc.put_bool(false);
}

/// Decodes an XDR linked list of at most `max_items` items with `decode_item`.
///
/// Nothing is pre-allocated from wire values; the vector grows as items are actually decoded.
pub(crate) fn decode_list<T>(
    dec: &mut XdrDecoder,
    what: &'static str,
    max_items: usize,
    mut decode_item: impl FnMut(&mut XdrDecoder) -> XdrResult<T>,
) -> XdrResult<Vec<T>> {
    let mut items = Vec::new();
    while dec.get_bool()? {
        if items.len() >= max_items {
            return Err(XdrError::TooLong {
                what,
                len: items.len() as u64 + 1,
                max: max_items as u64,
            });
        }
        items.push(decode_item(dec)?);
    }
    Ok(items)
}

/// Defines a structure whose XDR encoding is its fields in order.
///
/// Each field is encoded with its type's `XdrEncode`/`XdrDecode`, or, when written
/// `field: Type as Codec`, with `Codec`'s [`FieldCodec`] implementation. Struct expression fields
/// are evaluated in the order written, so decoding follows the wire order.
macro_rules! xdr_struct {
    (@enc $enc:ident, $val:expr, $ty:ty) => {
        $crate::xdr::XdrEncode::encode(&$val, $enc)
    };
    (@enc $enc:ident, $val:expr, $ty:ty, $codec:ty) => {
        <$codec as $crate::nfs3::codec::FieldCodec<$ty>>::encode_field(&$val, $enc)
    };
    (@dec $dec:ident, $ty:ty) => {
        <$ty as $crate::xdr::XdrDecode>::decode($dec)?
    };
    (@dec $dec:ident, $ty:ty, $codec:ty) => {
        <$codec as $crate::nfs3::codec::FieldCodec<$ty>>::decode_field($dec)?
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty $(as $codec:ty)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl $crate::xdr::XdrEncode for $name {
            #[allow(unused_variables)]
            fn encode(&self, enc: &mut $crate::xdr::XdrEncoder) {
                $( $crate::nfs3::codec::xdr_struct!(@enc enc, self.$field, $ty $(, $codec)?); )*
            }
        }

        impl $crate::xdr::XdrDecode for $name {
            #[allow(unused_variables)]
            fn decode(dec: &mut $crate::xdr::XdrDecoder) -> $crate::xdr::XdrResult<Self> {
                Ok(Self {
                    $( $field: $crate::nfs3::codec::xdr_struct!(@dec dec, $ty $(, $codec)?), )*
                })
            }
        }
    };
}

pub(crate) use xdr_struct;
