//! Docker's tar-split metadata (`layerdb/sha256/<chain>/tar-split.json.gz`): the bytes of a layer
//! tar that are not file contents (headers, padding, the end-of-archive blocks), recorded as gzip'd
//! JSON lines so the exact original tar, and so its DiffID, can be rebuilt from the extracted
//! files. Entry `type` 1 is a file payload (name, size, CRC-64/ISO of its contents), `type` 2 a
//! raw segment, exactly as `github.com/vbatts/tar-split` writes them.
use flate2::write::GzEncoder;
use std::io::{BufRead, Write};

/// tar-split's entry types.
pub const FILE_TYPE: u8 = 1;
pub const SEGMENT_TYPE: u8 = 2;

/// A raw segment grows to at most this many bytes before it is written out (only trailing
/// data after the end-of-archive blocks gets this long; tar-split readers concatenate segments).
const MAX_SEGMENT: usize = 1 << 20;

/// Records a tar stream's layout while it is being parsed, writing each JSON line to the gzip
/// stream as soon as it is known: memory stays bounded however many entries the tar has.
pub struct TarSplitWriter<W: Write> {
    gz: GzEncoder<W>,
    position: u64,
    pending: Vec<u8>,
}

impl<W: Write> TarSplitWriter<W> {
    /// A recorder writing the gzip'd document to `out`.
    pub fn new(out: W) -> Self {
        TarSplitWriter {
            gz: GzEncoder::new(out, flate2::Compression::fast()),
            position: 0,
            pending: Vec::new(),
        }
    }

    /// Adds raw bytes (headers, padding) to the current segment.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= MAX_SEGMENT {
            self.flush_segment()?;
        }
        Ok(())
    }

    fn flush_segment(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let line = format!(
            "{{\"type\":{SEGMENT_TYPE},\"payload\":\"{}\",\"position\":{}}}\n",
            base64_encode(&self.pending),
            self.position
        );
        self.gz.write_all(line.as_bytes())?;
        self.position += 1;
        self.pending.clear();
        Ok(())
    }

    /// Records a file entry: the pending header bytes become a segment, then the payload entry
    /// with the CRC-64 of its contents (`crc` is ignored for an empty file).
    pub fn file(&mut self, name: &[u8], size: u64, crc: u64) -> std::io::Result<()> {
        self.flush_segment()?;
        let name_field = match std::str::from_utf8(name) {
            Ok(s) => format!("\"name\":{}", serde_json::Value::String(s.to_string())),
            Err(_) => format!("\"name_raw\":\"{}\"", base64_encode(name)),
        };
        let (size_field, payload) = if size > 0 {
            (
                format!(",\"size\":{size}"),
                format!("\"{}\"", base64_encode(&crc.to_be_bytes())),
            )
        } else {
            (String::new(), "null".to_string())
        };
        let line = format!(
            "{{\"type\":{FILE_TYPE},{name_field}{size_field},\"payload\":{payload},\"position\":{}}}\n",
            self.position
        );
        self.gz.write_all(line.as_bytes())?;
        self.position += 1;
        Ok(())
    }

    /// Writes the trailing segment, ends the gzip stream and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_segment()?;
        self.gz.finish()
    }
}

/// One recorded entry.
#[derive(Debug, PartialEq, Eq)]
pub enum TarSplitEntry {
    Segment(Vec<u8>),
    File {
        name: Vec<u8>,
        size: u64,
        crc: Option<u64>,
    },
}

#[derive(serde::Deserialize)]
struct RawEntry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    payload: Option<String>,
}

/// Reads a gzip'd tar-split document, calling `each` per entry in order.
pub fn read_entries(
    gz_bytes: impl std::io::Read,
    mut each: impl FnMut(TarSplitEntry) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(gz_bytes));
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawEntry =
            serde_json::from_str(&line).map_err(|e| bad(format!("tar-split line: {e}")))?;
        let payload = match &raw.payload {
            Some(p) => Some(
                base64_decode(p).ok_or_else(|| bad("tar-split payload is not base64".into()))?,
            ),
            None => None,
        };
        match raw.kind {
            SEGMENT_TYPE => each(TarSplitEntry::Segment(payload.unwrap_or_default()))?,
            FILE_TYPE => {
                let name = match (raw.name, raw.name_raw) {
                    (_, Some(r)) => {
                        base64_decode(&r).ok_or_else(|| bad("tar-split name_raw".into()))?
                    }
                    (Some(n), None) => n.into_bytes(),
                    (None, None) => Vec::new(),
                };
                let crc = match payload {
                    Some(p) if p.len() == 8 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&p);
                        Some(u64::from_be_bytes(b))
                    }
                    _ => None,
                };
                each(TarSplitEntry::File {
                    name,
                    size: raw.size,
                    crc,
                })?
            }
            other => return Err(bad(format!("tar-split entry type {other}"))),
        }
    }
    Ok(())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (Go's `base64.StdEncoding`, what `encoding/json` uses for []byte).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decodes standard base64 (padding optional); None on bad input.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// CRC-64/ISO as Go's `hash/crc64` computes it with its `ISO` table (reflected, initial value and
/// final xor all ones): what tar-split stores per file. `crc-fast` folds with carry-less
/// multiplication (PCLMULQDQ, or VPCLMULQDQ with AVX-512 where the CPU has them, chosen at run
/// time), some 10-20x the table-driven code this replaced.
#[derive(Clone, Copy)]
pub struct Crc64 {
    digest: crc_fast::Digest,
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    pub fn new() -> Self {
        Crc64 {
            digest: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso),
        }
    }
    /// Adds bytes.
    pub fn update(&mut self, p: &[u8]) {
        self.digest.update(p);
    }
    /// The checksum of everything added so far, as Go's `crc64.Checksum(data, ISO)`.
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table-driven CRC this module used before `crc-fast` (Go's ISO table, one byte at a
    /// time), kept as the reference the new one must match.
    fn old_table_crc(data: &[u8]) -> u64 {
        const POLY: u64 = 0xD800_0000_0000_0000;
        let mut table = [0u64; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut crc = i as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        let mut crc = !0u64;
        for &b in data {
            crc = table[((crc as u8) ^ b) as usize] ^ (crc >> 8);
        }
        !crc
    }

    #[test]
    fn crc64_go_iso_check_value() {
        let mut c = Crc64::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xb909_56c7_75a4_1001);
        let mut split = Crc64::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.value(), c.value());
        assert_eq!(Crc64::new().value(), 0);
    }

    /// Payload CRCs from tar-split documents that Docker 20.10 (vbatts/tar-split, Go's
    /// `crc64.ISO`) wrote when loading layers with these files.
    #[test]
    fn crc64_matches_records_written_by_docker() {
        let mut a = Crc64::new();
        a.update(b"hello tar-split\n");
        assert_eq!(base64_encode(&a.value().to_be_bytes()), "H8XlS5sWso8=");
        // `yes 0123456789abcdef | head -c 100000`
        let line = b"0123456789abcdef\n";
        let data: Vec<u8> = line.iter().copied().cycle().take(100_000).collect();
        let mut c = Crc64::new();
        for piece in data.chunks(4093) {
            c.update(piece);
        }
        assert_eq!(base64_encode(&c.value().to_be_bytes()), "vHh3Cm8GDFE=");
    }

    #[test]
    fn simd_crc_matches_the_old_table_crc() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [
            0, 1, 7, 8, 15, 16, 31, 63, 64, 127, 128, 255, 256, 257, 511, 4095, 16_384, 65_537,
            299_999,
        ] {
            let mut whole = Crc64::new();
            whole.update(&data[..len]);
            assert_eq!(whole.value(), old_table_crc(&data[..len]), "len {len}");
            // Fed in uneven pieces, as payloads arrive from the reader.
            let mut pieces = Crc64::new();
            let mut rest = &data[..len];
            let mut step = 1;
            while !rest.is_empty() {
                let n = step.min(rest.len());
                pieces.update(&rest[..n]);
                rest = &rest[n..];
                step = step * 3 + 1;
            }
            assert_eq!(pieces.value(), whole.value(), "len {len} in pieces");
        }
    }

    #[test]
    fn base64_round_trips() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base64_decode(&base64_encode(s)).unwrap(), s);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn tar_split_round_trips() {
        let mut w = TarSplitWriter::new(Vec::new());
        w.raw(&[1, 2, 3]).unwrap();
        w.file(b"etc/passwd", 10, 42).unwrap();
        w.raw(&[0; 4]).unwrap();
        w.file(b"empty", 0, 7).unwrap();
        w.raw(&[9]).unwrap();
        let doc = w.finish().unwrap();
        let mut got = Vec::new();
        read_entries(&doc[..], |e| {
            got.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                TarSplitEntry::Segment(vec![1, 2, 3]),
                TarSplitEntry::File {
                    name: b"etc/passwd".to_vec(),
                    size: 10,
                    crc: Some(42)
                },
                TarSplitEntry::Segment(vec![0; 4]),
                TarSplitEntry::File {
                    name: b"empty".to_vec(),
                    size: 0,
                    crc: None
                },
                TarSplitEntry::Segment(vec![9]),
            ]
        );
    }
}
