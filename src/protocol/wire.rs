//! Primitive notations of the CQL binary protocol (section 3 of the v4 spec):
//! `[int]`, `[short]`, `[string]`, `[bytes]`, maps and lists of them.
//!
//! Reading goes through [`Reader`], a bounds-checked cursor that never panics;
//! writing appends to a `Vec<u8>`.

use std::collections::HashMap;

use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::{invalid, ProtocolError};

/// A bounds-checked cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// The buffer `buf` is in, when parts of it may be kept without a copy.
    owner: Option<&'a Bytes>,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, owner: None }
    }

    /// A cursor whose parts can be kept as slices of `buf` (`shared`).
    pub fn over(buf: &'a Bytes) -> Self {
        Reader {
            buf,
            owner: Some(buf),
        }
    }

    /// `part` (read from this cursor) as a slice of the buffer it came
    /// from, if the cursor was made `over` one.
    pub fn shared(&self, part: &[u8]) -> Option<Bytes> {
        let owner = self.owner?;
        let start = (part.as_ptr() as usize).checked_sub(owner.as_ptr() as usize)?;
        (start + part.len() <= owner.len()).then(|| owner.slice(start..start + part.len()))
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// What is left, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(ProtocolError::Truncated {
                needed: n,
                available: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn uuid(&mut self) -> Result<[u8; 16], ProtocolError> {
        self.array()
    }

    /// `[string]`: a `[short]` length then UTF-8.
    pub fn string(&mut self) -> Result<&'a str, ProtocolError> {
        let len = self.u16()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| ProtocolError::BadUtf8)
    }

    /// `[long string]`: an `[int]` length then UTF-8.
    pub fn long_string(&mut self) -> Result<&'a str, ProtocolError> {
        let len = self.i32()?;
        if len < 0 {
            return Err(invalid(format!("negative long string length {len}")));
        }
        std::str::from_utf8(self.take(len as usize)?).map_err(|_| ProtocolError::BadUtf8)
    }

    /// `[bytes]`: an `[int]` length (negative = null) then the bytes.
    pub fn bytes(&mut self) -> Result<Option<&'a [u8]>, ProtocolError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?))
    }

    /// `[value]`: like `[bytes]`, but -2 means "unset" (v4 bind values).
    pub fn value(&mut self) -> Result<BoundValue<'a>, ProtocolError> {
        let len = self.i32()?;
        match len {
            -2 => Ok(BoundValue::Unset),
            n if n < 0 => Ok(BoundValue::Null),
            n => Ok(BoundValue::Set(self.take(n as usize)?)),
        }
    }

    /// `[short bytes]`: a `[short]` length then the bytes.
    pub fn short_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    pub fn string_list(&mut self) -> Result<Vec<String>, ProtocolError> {
        let n = self.u16()?;
        (0..n).map(|_| self.string().map(str::to_owned)).collect()
    }

    pub fn string_map(&mut self) -> Result<Vec<(String, String)>, ProtocolError> {
        let n = self.u16()?;
        (0..n)
            .map(|_| Ok((self.string()?.to_owned(), self.string()?.to_owned())))
            .collect()
    }

    pub fn string_multimap(&mut self) -> Result<Vec<(String, Vec<String>)>, ProtocolError> {
        let n = self.u16()?;
        (0..n)
            .map(|_| Ok((self.string()?.to_owned(), self.string_list()?)))
            .collect()
    }

    pub fn bytes_map(&mut self) -> Result<HashMap<String, Vec<u8>>, ProtocolError> {
        let n = self.u16()?;
        // Each entry takes at least 6 bytes (key length, value length).
        let mut map = HashMap::with_capacity(usize::from(n).min(self.remaining() / 6));
        for _ in 0..n {
            let key = self.string()?.to_owned();
            let value = self.bytes()?.map(<[u8]>::to_vec).unwrap_or_default();
            map.insert(key, value);
        }
        Ok(map)
    }

    /// `[inetaddr]`: a length byte (4 or 16) then the address.
    pub fn inet_addr(&mut self) -> Result<IpAddr, ProtocolError> {
        let len = self.u8()?;
        parse_ip(self.take(len as usize)?)
    }

    /// `[inet]`: an `[inetaddr]` followed by an `[int]` port.
    pub fn inet(&mut self) -> Result<SocketAddr, ProtocolError> {
        let ip = self.inet_addr()?;
        let port = self.i32()?;
        let port = u16::try_from(port).map_err(|_| invalid(format!("bad port {port}")))?;
        Ok(SocketAddr::new(ip, port))
    }
}

/// Parses a 4- or 16-byte address.
pub fn parse_ip(bytes: &[u8]) -> Result<IpAddr, ProtocolError> {
    match bytes.len() {
        4 => Ok(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            Ok(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        n => Err(invalid(format!("inet address of {n} bytes"))),
    }
}

/// One bind value of a QUERY, EXECUTE or BATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundValue<'a> {
    Set(&'a [u8]),
    Null,
    /// v4 "not set": leave the column as it is.
    Unset,
}

pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Length of a collection or string as the protocol's i32/u16, or an error
/// instead of silent truncation.
pub fn len_i32(len: usize) -> Result<i32, ProtocolError> {
    i32::try_from(len).map_err(|_| invalid(format!("length {len} exceeds i32")))
}

fn len_u16(len: usize) -> Result<u16, ProtocolError> {
    u16::try_from(len).map_err(|_| invalid(format!("length {len} exceeds u16")))
}

pub fn put_string(out: &mut Vec<u8>, s: &str) -> Result<(), ProtocolError> {
    put_u16(out, len_u16(s.len())?);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub fn put_long_string(out: &mut Vec<u8>, s: &str) -> Result<(), ProtocolError> {
    put_i32(out, len_i32(s.len())?);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) -> Result<(), ProtocolError> {
    match b {
        None => put_i32(out, -1),
        Some(b) => {
            put_i32(out, len_i32(b.len())?);
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

pub fn put_value(out: &mut Vec<u8>, v: BoundValue<'_>) -> Result<(), ProtocolError> {
    match v {
        BoundValue::Set(b) => put_bytes(out, Some(b)),
        BoundValue::Null => {
            put_i32(out, -1);
            Ok(())
        }
        BoundValue::Unset => {
            put_i32(out, -2);
            Ok(())
        }
    }
}

pub fn put_short_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), ProtocolError> {
    put_u16(out, len_u16(b.len())?);
    out.extend_from_slice(b);
    Ok(())
}

pub fn put_string_list<S: AsRef<str>>(out: &mut Vec<u8>, list: &[S]) -> Result<(), ProtocolError> {
    put_u16(out, len_u16(list.len())?);
    for s in list {
        put_string(out, s.as_ref())?;
    }
    Ok(())
}

pub fn put_string_map<K: AsRef<str>, V: AsRef<str>>(
    out: &mut Vec<u8>,
    map: &[(K, V)],
) -> Result<(), ProtocolError> {
    put_u16(out, len_u16(map.len())?);
    for (k, v) in map {
        put_string(out, k.as_ref())?;
        put_string(out, v.as_ref())?;
    }
    Ok(())
}

pub fn put_string_multimap<K: AsRef<str>, V: AsRef<str>>(
    out: &mut Vec<u8>,
    map: &[(K, Vec<V>)],
) -> Result<(), ProtocolError> {
    put_u16(out, len_u16(map.len())?);
    for (k, values) in map {
        put_string(out, k.as_ref())?;
        put_string_list(out, values)?;
    }
    Ok(())
}

/// `[bytes map]`, written in key order so frames are deterministic.
pub fn put_bytes_map(
    out: &mut Vec<u8>,
    map: &HashMap<String, Vec<u8>>,
) -> Result<(), ProtocolError> {
    put_u16(out, len_u16(map.len())?);
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        put_string(out, key)?;
        put_bytes(out, Some(&map[key]))?;
    }
    Ok(())
}

pub fn ip_octets(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

pub fn put_inet(out: &mut Vec<u8>, addr: &SocketAddr) {
    let octets = ip_octets(&addr.ip());
    put_u8(out, octets.len() as u8);
    out.extend_from_slice(&octets);
    put_i32(out, i32::from(addr.port()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut out = Vec::new();
        put_string(&mut out, "héllo").unwrap();
        put_long_string(&mut out, "SELECT 1").unwrap();
        put_bytes(&mut out, None).unwrap();
        put_bytes(&mut out, Some(b"ab")).unwrap();
        put_value(&mut out, BoundValue::Unset).unwrap();
        put_short_bytes(&mut out, &[1, 2, 3]).unwrap();
        put_string_multimap(&mut out, &[("K", vec!["a", "b"])]).unwrap();
        put_inet(&mut out, &"127.0.0.2:9042".parse().unwrap());
        let mut r = Reader::new(&out);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.long_string().unwrap(), "SELECT 1");
        assert_eq!(r.bytes().unwrap(), None);
        assert_eq!(r.bytes().unwrap(), Some(&b"ab"[..]));
        assert_eq!(r.value().unwrap(), BoundValue::Unset);
        assert_eq!(r.short_bytes().unwrap(), &[1, 2, 3]);
        assert_eq!(
            r.string_multimap().unwrap(),
            vec![("K".to_owned(), vec!["a".to_owned(), "b".to_owned()])]
        );
        assert_eq!(r.inet().unwrap(), "127.0.0.2:9042".parse().unwrap());
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        put_string(&mut out, "abcdef").unwrap();
        for cut in 0..out.len() {
            assert!(Reader::new(&out[..cut]).string().is_err());
        }
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xfe])
            .long_string()
            .is_err());
        assert_eq!(
            Reader::new(&[0, 0xff]).string(),
            Err(ProtocolError::Truncated {
                needed: 255,
                available: 0
            })
        );
        assert_eq!(
            Reader::new(&[0, 1, 0xff]).string(),
            Err(ProtocolError::BadUtf8)
        );
    }
}
