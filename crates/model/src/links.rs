//! The `run` flags that name other containers (`--link`, `--volumes-from`) and the
//! streams `-a/--attach` picks, with docker's parsing rules and words.

use super::{bad, OptionsError};

/// `--link NAME[:ALIAS]` (the alias defaults to the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub alias: String,
}

/// docker's `opts.ParseLink`: `name`, `name:alias`, or the stored `/name:/parent/alias`.
pub fn parse_link(s: &str) -> Result<Link, OptionsError> {
    let invalid = |reason: String| bad("--link", s, reason);
    if s.is_empty() {
        return Err(invalid("empty string specified for links".into()));
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (name, alias) = match parts.as_slice() {
        [name] => (*name, *name),
        [name, alias] => match name.strip_prefix('/') {
            Some(stored) => (stored, alias.rsplit('/').next().unwrap_or(alias)),
            None => (*name, *alias),
        },
        _ => return Err(invalid(format!("bad format for links: {s}"))),
    };
    if name.is_empty() || alias.is_empty() {
        return Err(invalid(format!("bad format for links: {s}")));
    }
    Ok(Link {
        name: name.to_string(),
        alias: alias.to_string(),
    })
}

/// `--volumes-from CONTAINER[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumesFrom {
    /// As typed (docker keeps it so in `HostConfig.VolumesFrom`).
    pub spec: String,
    pub container: String,
    /// `:ro`: every mount read-only. Otherwise each keeps its own mode (`:rw` cannot
    /// make a read-only mount writable, as in docker).
    pub read_only: bool,
}

/// docker's `ParseVolumesFrom`: a mode of `ro` or `rw`; propagation and copy modes
/// are refused (the mounts keep the other container's).
pub fn parse_volumes_from(s: &str) -> Result<VolumesFrom, OptionsError> {
    if s.is_empty() {
        return Err(OptionsError::Invalid(
            "volumes-from specification cannot be an empty string".into(),
        ));
    }
    let (container, mode) = s.split_once(':').unwrap_or((s, ""));
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => return Err(OptionsError::Invalid(format!("invalid mode: {other}"))),
    };
    if container.is_empty() {
        return Err(OptionsError::Invalid(format!(
            "invalid volumes-from specification: {s}: no container named"
        )));
    }
    Ok(VolumesFrom {
        spec: s.to_string(),
        container: container.to_string(),
        read_only,
    })
}

/// Which of the container's streams an attached `run` relays (`-a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// docker's rules: without `-a`, stdout and stderr; `-i` attaches stdin as well.
pub fn parse_attach(values: &[String], interactive: bool) -> Result<AttachStreams, OptionsError> {
    let mut s = AttachStreams {
        stdin: interactive,
        stdout: values.is_empty(),
        stderr: values.is_empty(),
    };
    for v in values {
        match v.to_ascii_lowercase().as_str() {
            "stdin" => s.stdin = true,
            "stdout" => s.stdout = true,
            "stderr" => s.stderr = true,
            _ => {
                return Err(bad(
                    "-a, --attach",
                    v,
                    "valid streams are STDIN, STDOUT and STDERR",
                ))
            }
        }
    }
    Ok(s)
}

impl super::ContainerSpec {
    /// The streams an attached `run` relays (docker's `Config.Attach*`).
    pub fn attached_streams(&self) -> AttachStreams {
        self.attach.unwrap_or(AttachStreams {
            stdin: self.interactive,
            stdout: true,
            stderr: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_as_docker_parses_them() {
        let l = parse_link("web").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("web", "web"));
        let l = parse_link("web:db").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("web", "db"));
        let l = parse_link("/web:/app/db").unwrap();
        assert_eq!((l.name.as_str(), l.alias.as_str()), ("web", "db"));
        assert_eq!(
            parse_link("a:b:c").unwrap_err().to_string(),
            "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"
        );
        assert!(parse_link("").is_err());
        assert!(parse_link("web:").is_err());
    }

    #[test]
    fn volumes_from_modes() {
        let v = parse_volumes_from("data").unwrap();
        assert_eq!((v.container.as_str(), v.read_only), ("data", false));
        assert!(parse_volumes_from("data:ro").unwrap().read_only);
        assert!(!parse_volumes_from("data:rw").unwrap().read_only);
        assert_eq!(
            parse_volumes_from("data:rshared").unwrap_err().to_string(),
            "invalid mode: rshared"
        );
        assert!(parse_volumes_from("").is_err());
        assert!(parse_volumes_from(":ro").is_err());
    }

    #[test]
    fn attach_streams() {
        let all = parse_attach(&[], false).unwrap();
        assert!(!all.stdin && all.stdout && all.stderr);
        let err = parse_attach(&["STDERR".into()], false).unwrap();
        assert!(!err.stdin && !err.stdout && err.stderr);
        assert!(parse_attach(&["stdout".into()], true).unwrap().stdin);
        assert_eq!(
            parse_attach(&["tty".into()], false).unwrap_err().to_string(),
            "invalid argument \"tty\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
        );
    }
}
