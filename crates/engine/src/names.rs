//! Container ids and docker-style generated names (`adjective_surname`).

/// 64 random hex digits, as docker's container ids.
pub fn new_container_id() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn getrandom(mut buf: &mut [u8]) -> Result<(), std::io::Error> {
    use rustix::rand::{getrandom, GetRandomFlags};
    while !buf.is_empty() {
        match getrandom(&mut *buf, GetRandomFlags::empty()) {
            Ok(n) => buf = &mut buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

// Our own short lists in docker's spirit: scientists, engineers and explorers.
const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "daring", "eager",
    "elegant", "epic", "fervent", "gentle", "happy", "hardy", "jolly", "keen", "kind", "lively",
    "lucid", "merry", "mighty", "modest", "nimble", "noble", "patient", "plucky", "proud", "quick",
    "quiet", "rapid", "serene", "sharp", "sleek", "smart", "steady", "stoic", "sunny", "swift",
    "tender", "tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous", "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "bardeen",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goodall",
    "hamilton",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "maxwell",
    "meitner",
    "mirzakhani",
    "newton",
    "noether",
    "pascal",
    "planck",
    "ritchie",
    "sagan",
    "shannon",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
    "yonath",
];

/// A random `adjective_surname`; the caller retries on a clash.
pub fn generate_name() -> Result<String, std::io::Error> {
    let mut b = [0u8; 4];
    getrandom(&mut b)?;
    let a = u16::from_le_bytes([b[0], b[1]]) as usize % ADJECTIVES.len();
    let s = u16::from_le_bytes([b[2], b[3]]) as usize % SURNAMES.len();
    Ok(format!("{}_{}", ADJECTIVES[a], SURNAMES[s]))
}

/// Docker's rule for user-given names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub(crate) fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let id = new_container_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_container_id().unwrap());
        let n = generate_name().unwrap();
        assert!(valid_name(&n), "{n}");
        assert!(!valid_name("a"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert!(valid_name("web-1.x_y"));
    }
}
