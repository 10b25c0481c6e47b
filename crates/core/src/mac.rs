//! Ethernet (MAC) addresses, as the state database stores them and `ip link` shows
//! them: six lowercase hex bytes joined by colons (`02:42:0a:58:00:02`).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid MAC address {0:?}: expected six hex bytes joined by colons, e.g. 02:42:0a:58:00:02"
)]
pub struct MacAddrError(pub String);

impl MacAddrError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

impl MacAddr {
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> MacAddr {
        MacAddr(bytes)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The canonical form only: the flag grammar (`--mac-address` also takes dashes and
/// dotted groups, and refuses multicast) is the option parser's.
impl FromStr for MacAddr {
    type Err = MacAddrError;

    fn from_str(s: &str) -> Result<MacAddr, MacAddrError> {
        let bad = || MacAddrError(s.to_string());
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            Some(_) => Err(bad()),
            None => Ok(MacAddr(bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_canonical_form() {
        let mac: MacAddr = "02:42:0A:58:00:ff".parse().unwrap();
        assert_eq!(mac.octets(), [0x02, 0x42, 0x0a, 0x58, 0x00, 0xff]);
        assert_eq!(mac.to_string(), "02:42:0a:58:00:ff");
        assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "02:42:0a:58:00",
            "02:42:0a:58:00:02:03",
            "02-42-0a-58-00-02",
            "0242.0a58.0002",
            "02:42:0a:58:00:2",
            "02:42:0a:58:00:+2",
            "02:42:0a:58:00:zz",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>(),
                Err(MacAddrError(bad.into())),
                "{bad}"
            );
        }
    }
}
