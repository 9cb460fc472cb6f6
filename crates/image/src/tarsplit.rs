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

/// CRC-64 with Go's ISO table (what tar-split stores per file), slicing by 8.
pub struct Crc64 {
    crc: u64,
}

fn crc_tables() -> &'static [[u64; 256]; 8] {
    static TABLES: std::sync::OnceLock<Box<[[u64; 256]; 8]>> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        const POLY: u64 = 0xD800_0000_0000_0000;
        let mut t = Box::new([[0u64; 256]; 8]);
        for i in 0..256 {
            let mut crc = i as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
            t[0][i] = crc;
        }
        for k in 1..8 {
            for i in 0..256 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            }
        }
        t
    })
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes per lane in the 4-lane loop.
const LANE: usize = 4096;

/// The linear operator "advance a raw CRC state over LANE zero bytes", as 8 byte tables.
fn lane_shift_tables() -> &'static [[u64; 256]; 8] {
    static TABLES: std::sync::OnceLock<Box<[[u64; 256]; 8]>> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let zeros = [0u8; LANE];
        let basis: Vec<u64> = (0..64).map(|bit| raw_update(1u64 << bit, &zeros)).collect();
        let mut t = Box::new([[0u64; 256]; 8]);
        for (k, table) in t.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                let mut acc = 0u64;
                for b in 0..8 {
                    if v & (1 << b) != 0 {
                        acc ^= basis[k * 8 + b];
                    }
                }
                *slot = acc;
            }
        }
        t
    })
}

fn lane_shift(s: u64) -> u64 {
    let t = lane_shift_tables();
    let mut out = 0;
    for (k, table) in t.iter().enumerate() {
        out ^= table[((s >> (8 * k)) & 0xff) as usize];
    }
    out
}

#[inline(always)]
fn step8(t: &[[u64; 256]; 8], crc: u64, p: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&p[..8]);
    let crc = crc ^ u64::from_le_bytes(w);
    t[7][(crc & 0xff) as usize]
        ^ t[6][((crc >> 8) & 0xff) as usize]
        ^ t[5][((crc >> 16) & 0xff) as usize]
        ^ t[4][((crc >> 24) & 0xff) as usize]
        ^ t[3][((crc >> 32) & 0xff) as usize]
        ^ t[2][((crc >> 40) & 0xff) as usize]
        ^ t[1][((crc >> 48) & 0xff) as usize]
        ^ t[0][(crc >> 56) as usize]
}

/// The CRC register update without Go's pre/post inversion (linear in state and data).
fn raw_update(mut crc: u64, mut p: &[u8]) -> u64 {
    let t = crc_tables();
    while p.len() >= 8 {
        crc = step8(t, crc, p);
        p = &p[8..];
    }
    for &b in p {
        crc = t[0][((crc as u8) ^ b) as usize] ^ (crc >> 8);
    }
    crc
}

impl Crc64 {
    pub fn new() -> Self {
        Crc64 { crc: 0 }
    }
    /// Adds bytes. Long inputs run four independent lanes at once (the table lookups of one
    /// lane no longer wait on the previous ones) and are joined with a precomputed shift.
    pub fn update(&mut self, mut p: &[u8]) {
        let t = crc_tables();
        let mut crc = !self.crc;
        while p.len() >= 4 * LANE {
            let (a, rest) = p.split_at(LANE);
            let (b, rest) = rest.split_at(LANE);
            let (c, rest) = rest.split_at(LANE);
            let (d, rest) = rest.split_at(LANE);
            let (mut s0, mut s1, mut s2, mut s3) = (crc, 0u64, 0u64, 0u64);
            let mut i = 0;
            while i < LANE {
                s0 = step8(t, s0, &a[i..]);
                s1 = step8(t, s1, &b[i..]);
                s2 = step8(t, s2, &c[i..]);
                s3 = step8(t, s3, &d[i..]);
                i += 8;
            }
            crc = lane_shift(lane_shift(lane_shift(s0) ^ s1) ^ s2) ^ s3;
            p = rest;
        }
        self.crc = !raw_update(crc, p);
    }
    pub fn value(&self) -> u64 {
        self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_go_iso_check_value() {
        let mut c = Crc64::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xb909_56c7_75a4_1001);
        let mut split = Crc64::new();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.value(), c.value());
    }

    #[test]
    fn four_lane_crc_matches_bytewise() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [
            0,
            7,
            8,
            4 * LANE - 1,
            4 * LANE,
            4 * LANE + 13,
            3 * 4 * LANE + 5,
            data.len(),
        ] {
            let mut fast = Crc64::new();
            fast.update(&data[..len]);
            let mut slow = !0u64;
            let t = crc_tables();
            for &b in &data[..len] {
                slow = t[0][((slow as u8) ^ b) as usize] ^ (slow >> 8);
            }
            assert_eq!(fast.value(), !slow, "len {len}");
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
