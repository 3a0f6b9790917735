//! SFTP framing: packets read whole from the channel (a length that cannot be trusted ends
//! the session, since its body cannot be skipped), answers written in batches, WRITE decoded
//! and DATA encoded by hand on the hot path (one copy of the payload each).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::budget::Reservation;

/// Largest READ or WRITE payload, as advertised in `limits@openssh.com`.
pub const MAX_DATA_LEN: u32 = 255 * 1024;
/// Largest packet accepted from a client: a maximal WRITE plus its header.
pub const MAX_PACKET_LEN: u32 = 256 * 1024 + 1024;

const SSH_FXP_WRITE: u8 = 6;
const SSH_FXP_DATA: u8 = 103;

/// Reads one packet body (without its length); `None` at a clean end of stream. The error is
/// the reason the session ends.
pub async fn read_packet<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<Bytes>, &'static str> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(_) => return Err("connection error"),
    }
    let length = u32::from_be_bytes(length);
    if length == 0 || length > MAX_PACKET_LEN {
        // The body cannot be skipped safely: the stream would lose its framing.
        return Err("packet length out of bounds");
    }
    let mut body = BytesMut::zeroed(length as usize);
    reader.read_exact(&mut body).await.map_err(|_| "connection closed inside a packet")?;
    Ok(Some(body.freeze()))
}

/// An encoded answer, with the budget it holds until it is written.
pub struct Outgoing {
    pub bytes: Bytes,
    /// Held until the answer is written, then dropped: the budget is given back.
    pub _budget: Option<Reservation>,
}

/// Writes answers as they come, flushing when the queue is empty; each answer's budget is
/// given back once it is written. After a write error the rest is dropped unwritten.
pub async fn write_responses<W: AsyncWrite + Unpin>(mut writer: W, mut queue: mpsc::UnboundedReceiver<Box<Outgoing>>) {
    let mut broken = false;
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            if !broken && writer.write_all(&outgoing.bytes).await.is_err() {
                broken = true;
            }
            drop(outgoing);
            next = queue.try_recv().ok();
        }
        if !broken && writer.flush().await.is_err() {
            broken = true;
        }
    }
}

/// A DATA answer: `[length][103][id][data string]`.
pub fn encode_data(id: u32, data: &[u8]) -> Bytes {
    let mut buffer = BytesMut::with_capacity(13 + data.len());
    buffer.put_u32(9 + data.len() as u32);
    buffer.put_u8(SSH_FXP_DATA);
    buffer.put_u32(id);
    buffer.put_u32(data.len() as u32);
    buffer.put_slice(data);
    buffer.freeze()
}

/// A WRITE request, decoded without copying its data.
#[derive(Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub id: u32,
    pub handle: String,
    pub offset: u64,
    pub data: Bytes,
}

impl WriteRequest {
    /// `[6][id][handle string][offset][data string]`; `None` for any other or malformed packet,
    /// which the generic decoder then answers.
    pub fn decode(body: &Bytes) -> Option<Self> {
        let mut cursor = body.clone();
        if cursor.len() < 9 || cursor.get_u8() != SSH_FXP_WRITE {
            return None;
        }
        let id = cursor.get_u32();
        let handle_len = cursor.get_u32() as usize;
        if cursor.len() < handle_len.checked_add(12)? {
            return None;
        }
        let handle = String::from_utf8(cursor.split_to(handle_len).to_vec()).ok()?;
        let offset = cursor.get_u64();
        let data_len = cursor.get_u32() as usize;
        if cursor.len() != data_len {
            return None;
        }
        Some(Self { id, handle, offset, data: cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    fn write_body(id: u32, handle: &str, offset: u64, data: &[u8]) -> Vec<u8> {
        let mut body = vec![SSH_FXP_WRITE];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&(handle.len() as u32).to_be_bytes());
        body.extend_from_slice(handle.as_bytes());
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(data);
        body
    }

    #[tokio::test]
    async fn whole_packets_are_read_and_a_clean_end_is_no_error() {
        let mut stream = &framed(b"\x01\x00\x00\x00\x03")[..];
        assert_eq!(read_packet(&mut stream).await.unwrap().unwrap().as_ref(), b"\x01\x00\x00\x00\x03");
        assert_eq!(read_packet(&mut stream).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_length_that_cannot_be_trusted_ends_the_session() {
        let mut empty = &0u32.to_be_bytes()[..];
        assert_eq!(read_packet(&mut empty).await, Err("packet length out of bounds"));
        let mut oversized = &(MAX_PACKET_LEN + 1).to_be_bytes()[..];
        assert_eq!(read_packet(&mut oversized).await, Err("packet length out of bounds"));
        let mut truncated = &framed(b"\x01\x00\x00\x00\x03")[..7];
        assert_eq!(read_packet(&mut truncated).await, Err("connection closed inside a packet"));
    }

    #[test]
    fn a_write_is_decoded_without_copying_and_a_malformed_one_is_left_to_the_generic_decoder() {
        let body = Bytes::from(write_body(7, "h1", 4096, b"abc"));
        let write = WriteRequest::decode(&body).unwrap();
        assert_eq!((write.id, write.handle.as_str(), write.offset, write.data.as_ref()), (7, "h1", 4096, &b"abc"[..]));
        let mut short = write_body(7, "h1", 4096, b"abc");
        short.pop();
        assert!(WriteRequest::decode(&Bytes::from(short)).is_none(), "data shorter than its length");
        let mut lying = write_body(7, "h1", 0, b"");
        lying[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(WriteRequest::decode(&Bytes::from(lying)).is_none(), "a handle length past the packet");
        assert!(WriteRequest::decode(&Bytes::from_static(b"\x05\x00\x00\x00\x01\x00\x00\x00\x00")).is_none());
    }

    #[test]
    fn data_is_framed_as_the_protocol_says() {
        let encoded = encode_data(9, b"xyz");
        assert_eq!(encoded.as_ref(), b"\x00\x00\x00\x0c\x67\x00\x00\x00\x09\x00\x00\x00\x03xyz");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any bytes from a client: framing never panics, a packet is never longer than the
        /// limit, and a WRITE decoded from them says exactly what its bytes say.
        #[test]
        fn fuzz_any_stream_is_framed_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut stream = &bytes[..];
            runtime.block_on(async {
                while let Ok(Some(body)) = read_packet(&mut stream).await {
                    assert!(!body.is_empty() && body.len() <= MAX_PACKET_LEN as usize);
                    if let Some(write) = WriteRequest::decode(&body) {
                        assert_eq!(body.len(), 1 + 4 + 4 + write.handle.len() + 8 + 4 + write.data.len());
                    }
                }
            });
        }

        #[test]
        fn fuzz_a_write_decoded_from_its_own_encoding_is_the_same(
            id in proptest::prelude::any::<u32>(),
            handle in "[a-z0-9]{0,16}",
            offset in proptest::prelude::any::<u64>(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let body = Bytes::from(write_body(id, &handle, offset, &data));
            let write = WriteRequest::decode(&body).unwrap();
            proptest::prop_assert_eq!((write.id, write.handle.as_str(), write.offset, write.data.as_ref()), (id, handle.as_str(), offset, &data[..]));
        }
    }
}
