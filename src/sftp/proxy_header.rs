//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms) that a TCP load
//! balancer sends before the client's bytes: it carries the client's address, which limits,
//! bans, sessions and the audit trail then see. Exactly the header is read, so the SSH bytes
//! that follow are left to russh. Trusting it is the caller's decision (`trusted_proxies`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 line is at most 107 bytes, its CRLF included.
const V1_MAX: usize = 107;
/// Addresses and the TLVs a balancer may add; more is not a header we take.
const V2_MAX_PAYLOAD: usize = 4096;

/// What the header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The client's address, as the balancer saw it.
    Client(SocketAddr),
    /// The balancer's own connection (a health check) or an unknown family: the connection's
    /// own address stands.
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the connection did not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error("the connection closed inside its PROXY protocol header")]
    Cut,
}

/// Reads one header from the start of a connection, and nothing after it.
pub async fn read_proxy_header<R: AsyncRead + Unpin>(stream: &mut R) -> Result<ProxyHeader, ProxyHeaderError> {
    let mut start = [0u8; 5];
    read_exact(stream, &mut start).await?;
    if &start == b"PROXY" {
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(ProxyHeaderError::Malformed("a v1 line longer than 107 bytes"));
            }
            let mut byte = [0u8; 1];
            read_exact(stream, &mut byte).await?;
            line.push(byte[0]);
        }
        return parse_v1(&line);
    }
    if start != V2_SIGNATURE[..5] {
        return Err(ProxyHeaderError::Missing);
    }
    let mut fixed = [0u8; 16];
    fixed[..5].copy_from_slice(&start);
    read_exact(stream, &mut fixed[5..]).await?;
    if fixed[..12] != V2_SIGNATURE {
        return Err(ProxyHeaderError::Missing);
    }
    let length = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if length > V2_MAX_PAYLOAD {
        return Err(ProxyHeaderError::Malformed("a v2 header longer than 4096 bytes"));
    }
    let mut payload = vec![0u8; length];
    read_exact(stream, &mut payload).await?;
    parse_v2(fixed[12], fixed[13], &payload)
}

async fn read_exact<R: AsyncRead + Unpin>(stream: &mut R, buffer: &mut [u8]) -> Result<(), ProxyHeaderError> {
    stream.read_exact(buffer).await.map(|_| ()).map_err(|_| ProxyHeaderError::Cut)
}

/// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 2222\r\n`, or `PROXY UNKNOWN…\r\n`.
pub fn parse_v1(line: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    let text = std::str::from_utf8(line).map_err(|_| malformed("a v1 line that is not text"))?;
    let text = text.strip_suffix("\r\n").ok_or(malformed("a v1 line without its CRLF"))?;
    let mut fields = text.split(' ');
    if fields.next() != Some("PROXY") {
        return Err(ProxyHeaderError::Missing);
    }
    let family = fields.next().ok_or(malformed("a v1 line without a protocol"))?;
    if family == "UNKNOWN" {
        return Ok(ProxyHeader::Local);
    }
    let (source, _destination, port, _destination_port) =
        match (fields.next(), fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(a), Some(b), Some(c), Some(d), None) => (a, b, c, d),
            _ => return Err(malformed("a v1 line without four address fields")),
        };
    let address: IpAddr = match family {
        "TCP4" => IpAddr::V4(source.parse::<Ipv4Addr>().map_err(|_| malformed("a v1 source that is not IPv4"))?),
        "TCP6" => IpAddr::V6(source.parse::<Ipv6Addr>().map_err(|_| malformed("a v1 source that is not IPv6"))?),
        _ => return Err(malformed("a v1 protocol other than TCP4, TCP6 or UNKNOWN")),
    };
    // The port is decimal without a sign or leading zeros.
    if port.is_empty() || port.len() > 5 || (port.len() > 1 && port.starts_with('0')) {
        return Err(malformed("a v1 source port that is not a port"));
    }
    let port: u16 = port.parse().map_err(|_| malformed("a v1 source port that is not a port"))?;
    Ok(ProxyHeader::Client(SocketAddr::new(address, port)))
}

/// The v2 version-and-command byte, the family-and-transport byte and what follows them.
pub fn parse_v2(version_command: u8, family: u8, payload: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    if version_command >> 4 != 2 {
        return Err(malformed("a v2 header of another version"));
    }
    match version_command & 0x0f {
        0 => return Ok(ProxyHeader::Local),
        1 => {}
        _ => return Err(malformed("a v2 command other than LOCAL or PROXY")),
    }
    match family {
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 => {
            let bytes: &[u8; 12] =
                payload.get(..12).and_then(|b| b.try_into().ok()).ok_or(malformed("a v2 IPv4 header too short"))?;
            let address = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            let port = u16::from_be_bytes([bytes[8], bytes[9]]);
            Ok(ProxyHeader::Client(SocketAddr::new(IpAddr::V4(address), port)))
        }
        0x21 => {
            let bytes: &[u8; 36] =
                payload.get(..36).and_then(|b| b.try_into().ok()).ok_or(malformed("a v2 IPv6 header too short"))?;
            let mut address = [0u8; 16];
            address.copy_from_slice(&bytes[..16]);
            let port = u16::from_be_bytes([bytes[32], bytes[33]]);
            Ok(ProxyHeader::Client(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(address)), port)))
        }
        // UNSPEC, UDP, unix sockets: nothing a client address can be taken from.
        _ => Ok(ProxyHeader::Local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<ProxyHeader, ProxyHeaderError>, Vec<u8>) {
        let mut stream = bytes;
        let header = read_proxy_header(&mut stream).await;
        (header, stream.to_vec())
    }

    fn client(text: &str) -> ProxyHeader {
        ProxyHeader::Client(text.parse().unwrap())
    }

    #[tokio::test]
    async fn a_v1_line_gives_the_client_and_leaves_the_ssh_bytes() {
        let (header, rest) = read(b"PROXY TCP4 127.0.0.33 10.0.0.1 40000 2222\r\nSSH-2.0-OpenSSH_9.2\r\n").await;
        assert_eq!(header, Ok(client("127.0.0.33:40000")));
        assert_eq!(rest, b"SSH-2.0-OpenSSH_9.2\r\n");
        let (header, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 443 2222\r\n").await;
        assert_eq!(header, Ok(client("[2001:db8::7]:443")));
        assert_eq!(read(b"PROXY UNKNOWN\r\n").await.0, Ok(ProxyHeader::Local));
        assert_eq!(read(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").await.0, Ok(ProxyHeader::Local));
    }

    #[tokio::test]
    async fn a_v2_header_gives_the_client_and_leaves_the_ssh_bytes() {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, 0x11, 0, 12 + 5]);
        bytes.extend_from_slice(&[127, 0, 0, 33, 10, 0, 0, 1, 0x9c, 0x40, 0x08, 0xae]);
        bytes.extend_from_slice(&[0x04, 0, 2, b'i', b'd']); // a TLV, skipped
        bytes.extend_from_slice(b"SSH-2.0-x\r\n");
        let (header, rest) = read(&bytes).await;
        assert_eq!(header, Ok(client("127.0.0.33:40000")));
        assert_eq!(rest, b"SSH-2.0-x\r\n");
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(read(&local).await.0, Ok(ProxyHeader::Local));
        let mut six = V2_SIGNATURE.to_vec();
        six.extend_from_slice(&[0x21, 0x21, 0, 36]);
        six.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        six.extend_from_slice(&[0; 16]);
        six.extend_from_slice(&[0, 22, 0, 22]);
        assert_eq!(read(&six).await.0, Ok(client("[::1]:22")));
    }

    #[tokio::test]
    async fn anything_else_is_refused_with_its_reason() {
        assert_eq!(read(b"SSH-2.0-OpenSSH_9.2\r\n").await.0, Err(ProxyHeaderError::Missing));
        assert_eq!(read(b"PROXY TCP4 127.0.0.1").await.0, Err(ProxyHeaderError::Cut));
        for line in [
            &b"PROXY TCP4 127.0.0.1 127.0.0.1 99999 2222\r\n"[..],
            b"PROXY TCP4 127.0.0.1 127.0.0.1 0080 2222\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 127.0.0.1 127.0.0.1 1\r\n",
            b"PROXY UDP4 127.0.0.1 127.0.0.1 1 2\r\n",
            b"PROXY TCP4 127.0.0.1  127.0.0.1 1 2\r\n",
        ] {
            assert!(
                matches!(read(line).await.0, Err(ProxyHeaderError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(120));
        assert!(matches!(read(long.as_bytes()).await.0, Err(ProxyHeaderError::Malformed(_))));
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(matches!(read(&short).await.0, Err(ProxyHeaderError::Malformed(_))));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(read(&huge).await.0, Err(ProxyHeaderError::Malformed(_))));
        let mut version = V2_SIGNATURE.to_vec();
        version.extend_from_slice(&[0x11, 0x11, 0, 0]);
        assert!(matches!(read(&version).await.0, Err(ProxyHeaderError::Malformed(_))));
    }
}
