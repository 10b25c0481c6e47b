//! Layer compression, recognised by magic bytes (registries' media types lie).

use std::io::{self, Cursor, Read};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Recognises the compression of a stream from its first bytes (at least 4 for zstd).
pub fn sniff(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decompressor its magic bytes call for (gzip, possibly with several
/// members; zstd, possibly with several frames), or returns it as it is (plain tar).
pub fn decompress<R: Read + Send + 'static>(mut r: R) -> io::Result<Box<dyn Read + Send>> {
    let mut prefix = [0u8; 4];
    let mut n = 0;
    while n < prefix.len() {
        match r.read(&mut prefix[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let whole = Cursor::new(prefix).take(n as u64).chain(r);
    Ok(match sniff(&prefix[..n]) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
        Compression::None => Box::new(whole),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn payload() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    fn read_all(r: Box<dyn Read + Send>) -> Vec<u8> {
        let mut r = r;
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    /// A reader that hands out one byte per read, to check the sniffing loop.
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(sniff(b"etc/"), Compression::None);
        assert_eq!(sniff(&[0x28, 0xb5]), Compression::None);
        assert_eq!(sniff(&[]), Compression::None);
    }

    #[test]
    fn gzip_round_trip_with_several_members() {
        let data = payload();
        let (a, b) = data.split_at(12345);
        let mut gz = Vec::new();
        for part in [a, b] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let out = read_all(decompress(Trickle(Cursor::new(gz))).unwrap());
        assert_eq!(out, data);
    }

    #[test]
    fn zstd_round_trip_with_several_frames() {
        let data = payload();
        let (a, b) = data.split_at(777);
        let mut z = zstd::encode_all(a, 3).unwrap();
        z.extend(zstd::encode_all(b, 3).unwrap());
        let out = read_all(decompress(Trickle(Cursor::new(z))).unwrap());
        assert_eq!(out, data);
    }

    #[test]
    fn plain_and_tiny_streams_pass_through() {
        let data = payload();
        assert_eq!(
            read_all(decompress(Cursor::new(data.clone())).unwrap()),
            data
        );
        assert_eq!(
            read_all(decompress(Cursor::new(vec![7u8, 8])).unwrap()),
            vec![7, 8]
        );
        assert!(read_all(decompress(io::empty()).unwrap()).is_empty());
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut bad = vec![0x1f, 0x8b, 8, 0];
        bad.extend([0xffu8; 64]);
        let mut r = decompress(Cursor::new(bad)).unwrap();
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
    }
}
