//! Frame body compression. v4 lz4 bodies are `[u32 BE uncompressed length]`
//! followed by a raw LZ4 block.

use super::error::ProtocolError;

/// Largest body we agree to inflate: the frame size limit.
pub const MAX_UNCOMPRESSED_LEN: usize = 256 * 1024 * 1024;

/// The most an lz4 block can inflate: 255 bytes out per byte in.
const MAX_LZ4_RATIO: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Lz4,
}

impl Compression {
    /// The name used in SUPPORTED and STARTUP.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Lz4 => "lz4",
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        match name.to_ascii_lowercase().as_str() {
            "lz4" => Some(Compression::Lz4),
            _ => None,
        }
    }

    pub fn compress(self, body: &[u8], out: &mut Vec<u8>) {
        match self {
            Compression::Lz4 => {
                out.extend_from_slice(&(body.len() as u32).to_be_bytes());
                let start = out.len();
                out.resize(
                    start + lz4_flex::block::get_maximum_output_size(body.len()),
                    0,
                );
                // Cannot fail: the buffer has the maximum output size.
                let written = lz4_flex::block::compress_into(body, &mut out[start..])
                    .expect("lz4 output buffer sized by get_maximum_output_size");
                out.truncate(start + written);
            }
        }
    }

    pub fn decompress(self, body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        match self {
            Compression::Lz4 => {
                if body.len() < 4 {
                    return Err(ProtocolError::Compression(
                        "lz4 body shorter than 4 bytes".into(),
                    ));
                }
                let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
                if len > MAX_UNCOMPRESSED_LEN {
                    return Err(ProtocolError::Compression(format!(
                        "lz4 body claims {len} bytes"
                    )));
                }
                // An lz4 block inflates at most 255-fold (a match-length
                // byte adds 255 bytes): a larger claim is refused before
                // its buffer is allocated.
                let compressed = body.len() - 4;
                if len > compressed.saturating_mul(MAX_LZ4_RATIO) + MAX_LZ4_RATIO {
                    return Err(ProtocolError::Compression(format!(
                        "lz4 body claims {len} bytes from {compressed}, over lz4's {MAX_LZ4_RATIO}:1"
                    )));
                }
                let out = lz4_flex::block::decompress(&body[4..], len)
                    .map_err(|e| ProtocolError::Compression(e.to_string()))?;
                if out.len() != len {
                    return Err(ProtocolError::Compression(format!(
                        "lz4 body inflated to {} bytes, header said {len}",
                        out.len()
                    )));
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lz4_round_trip_and_garbage() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 17) as u8).collect();
        let mut packed = Vec::new();
        Compression::Lz4.compress(&body, &mut packed);
        assert!(packed.len() < body.len());
        assert_eq!(Compression::Lz4.decompress(&packed).unwrap(), body);
        assert!(Compression::Lz4
            .decompress(&[0, 0, 0, 10, 0xff, 0xff])
            .is_err());
        assert!(Compression::Lz4
            .decompress(&[0xff, 0xff, 0xff, 0xff, 0])
            .is_err());
        assert!(Compression::Lz4.decompress(&[0, 0]).is_err());
    }

    #[test]
    fn the_most_compressible_body_inflates_and_larger_claims_are_refused() {
        let zeros = vec![0u8; 4 << 20];
        let mut packed = Vec::new();
        Compression::Lz4.compress(&zeros, &mut packed);
        assert_eq!(Compression::Lz4.decompress(&packed).unwrap(), zeros);
        // One literal byte claiming 200 MiB.
        let claim = [0x0c, 0x80, 0x00, 0x00, 0x10, 0x78];
        let e = Compression::Lz4.decompress(&claim).unwrap_err().to_string();
        assert!(e.contains("over lz4's 255:1"), "{e}");
    }
}
