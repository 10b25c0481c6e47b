//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for a container, with docker's
//! content and rules. The text is built by pure functions; [`write_etc_files`] writes
//! the three files into the container dir, from where the runtime spec bind-mounts
//! them over the image's.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// docker's default nameservers when the host has none usable.
pub const DEFAULT_DNS_V4: [&str; 2] = ["8.8.8.8", "8.8.4.4"];
pub const DEFAULT_DNS_V6: [&str; 2] = ["2001:4860:4860::8888", "2001:4860:4860::8844"];

/// `/etc/hostname`: the hostname and a newline.
pub fn hostname_content(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// What goes into `/etc/hosts`.
#[derive(Debug, Clone, Default)]
pub struct HostsConfig {
    pub hostname: String,
    /// `--domainname`: the container's own line then reads `IP fqdn hostname`.
    pub domainname: Option<String>,
    /// The container's address on its network (none with `--network none`).
    pub ip: Option<IpAddr>,
    /// `--add-host name:ip`, in order.
    pub extra_hosts: Vec<(String, IpAddr)>,
}

/// `/etc/hosts` as docker writes it: the loopback and IPv6 multicast names, then the
/// `--add-host` entries, then the container's own address with its hostname (docker adds
/// that line when the endpoint joins, after the rest). Tab-separated.
pub fn hosts_content(c: &HostsConfig) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in &c.extra_hosts {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = c.ip {
        let fqdn = match c.domainname.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => format!("{}.{d}", c.hostname),
            None => c.hostname.clone(),
        };
        let names = match fqdn.split_once('.') {
            Some((short, _)) => format!("{fqdn} {short}"),
            None => fqdn,
        };
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    s
}

/// `--dns`, `--dns-search`, `--dns-option`: each, when non-empty, replaces what the
/// host's file says.
#[derive(Debug, Clone, Default)]
pub struct DnsOverrides {
    pub nameservers: Vec<String>,
    /// `.` alone means "no search domains" (docker's convention).
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl DnsOverrides {
    fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }
}

fn nameserver_of(line: &str) -> Option<&str> {
    let mut it = line.split_whitespace();
    (it.next() == Some("nameserver"))
        .then(|| it.next())
        .flatten()
}

fn is_loopback(ns: &str) -> bool {
    // A zone suffix (fe80::1%eth0) does not make it loopback.
    ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_v6(ns: &str) -> bool {
    let bare = ns.split('%').next().unwrap_or(ns);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6())
}

/// `/etc/resolv.conf` for a container from the host's (its text), docker's rules:
/// nameservers on loopback (127.0.0.0/8, ::1: unreachable from the container's network
/// namespace) are dropped, and IPv6 ones too when the container has no IPv6; if no
/// nameserver is left, docker's defaults (8.8.8.8, 8.8.4.4, plus 2001:4860:4860::8888
/// and ::8844 with IPv6) are added. `search` and `options` lines (and comments) are
/// kept. With any override given, the file is rebuilt from the nameservers, search
/// domains and options, each taken from the override when given, else from the host.
pub fn resolv_conf_content(host: &str, ipv6: bool, overrides: &DnsOverrides) -> String {
    let mut kept_lines = Vec::new();
    let mut nameservers = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let t = line.trim_start();
        if let Some(ns) = nameserver_of(t) {
            if is_loopback(ns) || (!ipv6 && is_v6(ns)) {
                continue;
            }
            nameservers.push(ns.to_owned());
        } else {
            let mut it = t.split_whitespace();
            match it.next() {
                // The last search/domain line wins, as in the resolver.
                Some("search" | "domain") => search = it.map(str::to_owned).collect(),
                Some("options") => options.extend(it.map(str::to_owned)),
                _ => {}
            }
        }
        kept_lines.push(line);
    }
    let defaults = || {
        let mut d: Vec<String> = DEFAULT_DNS_V4.iter().map(|s| s.to_string()).collect();
        if ipv6 {
            d.extend(DEFAULT_DNS_V6.iter().map(|s| s.to_string()));
        }
        d
    };
    if overrides.is_empty() {
        let mut out = String::new();
        for l in &kept_lines {
            out.push_str(l);
            out.push('\n');
        }
        if nameservers.is_empty() {
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
            for ns in defaults() {
                out.push_str(&format!("nameserver {ns}\n"));
            }
        }
        return out;
    }
    let ns = if !overrides.nameservers.is_empty() {
        overrides.nameservers.clone()
    } else if !nameservers.is_empty() {
        nameservers
    } else {
        defaults()
    };
    let search = if !overrides.search.is_empty() {
        overrides
            .search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect()
    } else {
        search
    };
    let options = if !overrides.options.is_empty() {
        overrides.options.clone()
    } else {
        options
    };
    let mut out = String::new();
    for n in ns {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Which host file to base a container's resolv.conf on: `/etc/resolv.conf`, unless
/// its only nameserver is systemd-resolved's stub (127.0.0.53), in which case
/// `/run/systemd/resolve/resolv.conf` (the real upstream servers), as docker does.
pub fn host_resolv_conf_path() -> PathBuf {
    let etc = PathBuf::from("/etc/resolv.conf");
    let upstream = PathBuf::from("/run/systemd/resolve/resolv.conf");
    let Ok(text) = fs::read_to_string(&etc) else {
        return etc;
    };
    let ns: Vec<&str> = text
        .lines()
        .filter_map(|l| nameserver_of(l.trim_start()))
        .collect();
    if ns == ["127.0.0.53"] && upstream.is_file() {
        upstream
    } else {
        etc
    }
}

/// Everything [`write_etc_files`] needs.
#[derive(Debug, Clone, Default)]
pub struct EtcConfig {
    pub hosts: HostsConfig,
    /// The host's resolv.conf text (see [`host_resolv_conf_path`]).
    pub host_resolv_conf: String,
    pub ipv6: bool,
    pub dns: DnsOverrides,
}

/// Where [`write_etc_files`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Writes `hostname`, `hosts` and `resolv.conf` (0644) into `container_dir`, each via a
/// temp file renamed into place (replacing an older one, e.g. on restart).
pub fn write_etc_files(container_dir: &Path, c: &EtcConfig) -> io::Result<EtcFiles> {
    let files = EtcFiles {
        hostname: container_dir.join("hostname"),
        hosts: container_dir.join("hosts"),
        resolv_conf: container_dir.join("resolv.conf"),
    };
    write_atomic(&files.hostname, &hostname_content(&c.hosts.hostname))?;
    write_atomic(&files.hosts, &hosts_content(&c.hosts))?;
    write_atomic(
        &files.resolv_conf,
        &resolv_conf_content(&c.host_resolv_conf, c.ipv6, &c.dns),
    )?;
    Ok(files)
}

fn write_atomic(path: &Path, content: &str) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".etc-")
        .tempfile_in(dir)
        .map_err(ctx)?;
    tmp.write_all(content.as_bytes()).map_err(ctx)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(ctx)?;
    tmp.persist(path).map_err(|e| ctx(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

    #[test]
    fn hostname_file() {
        assert_eq!(hostname_content("abc123"), "abc123\n");
    }

    #[test]
    fn hosts_without_network_is_docker_default() {
        let c = HostsConfig {
            hostname: "abc".into(),
            ..Default::default()
        };
        assert_eq!(hosts_content(&c), BASE);
    }

    #[test]
    fn hosts_with_ip_extra_hosts_and_domain() {
        let c = HostsConfig {
            hostname: "web".into(),
            domainname: None,
            ip: Some("10.88.0.2".parse().unwrap()),
            extra_hosts: vec![
                ("db".into(), "10.0.0.5".parse().unwrap()),
                ("v6".into(), "fd00::1".parse().unwrap()),
            ],
        };
        assert_eq!(
            hosts_content(&c),
            format!("{BASE}10.0.0.5\tdb\nfd00::1\tv6\n10.88.0.2\tweb\n")
        );
        let c = HostsConfig {
            hostname: "web".into(),
            domainname: Some("example.org".into()),
            ip: Some("10.88.0.2".parse().unwrap()),
            extra_hosts: vec![],
        };
        assert!(hosts_content(&c).ends_with("10.88.0.2\tweb.example.org web\n"));
        // A FQDN hostname gets its short name too.
        let c = HostsConfig {
            hostname: "a.b.c".into(),
            ip: Some("10.88.0.3".parse().unwrap()),
            ..Default::default()
        };
        assert!(hosts_content(&c).ends_with("10.88.0.3\ta.b.c a\n"));
    }

    #[test]
    fn resolv_keeps_non_loopback_and_search_options() {
        let host = "# from DHCP\nnameserver 10.0.0.1\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0 trust-ad\n";
        let out = resolv_conf_content(host, false, &DnsOverrides::default());
        assert_eq!(
            out,
            "# from DHCP\nnameserver 10.0.0.1\nsearch corp.example\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn resolv_drops_all_loopback_forms() {
        let host = "nameserver 127.0.0.1\nnameserver 127.1.2.3\n  nameserver ::1\nnameserver 192.168.1.1\n";
        assert_eq!(
            resolv_conf_content(host, true, &DnsOverrides::default()),
            "nameserver 192.168.1.1\n"
        );
    }

    #[test]
    fn resolv_defaults_when_only_loopback() {
        let host = "nameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            resolv_conf_content(host, false, &DnsOverrides::default()),
            "options edns0\n\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf_content("", true, &DnsOverrides::default()),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"
        );
    }

    #[test]
    fn resolv_drops_ipv6_servers_without_ipv6() {
        let host = "nameserver 2001:db8::1\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\n";
        assert_eq!(
            resolv_conf_content(host, false, &DnsOverrides::default()),
            "nameserver 10.0.0.1\n"
        );
        assert_eq!(
            resolv_conf_content(host, true, &DnsOverrides::default()),
            host
        );
        // Only IPv6 servers and no IPv6: the IPv4 defaults.
        assert_eq!(
            resolv_conf_content("nameserver 2001:db8::1\n", false, &DnsOverrides::default()),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn resolv_overrides() {
        let host = "# comment\nnameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2\n";
        let o = DnsOverrides {
            nameservers: vec!["1.1.1.1".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_content(host, false, &o),
            "nameserver 1.1.1.1\nsearch a.example b.example\noptions ndots:2\n"
        );
        let o = DnsOverrides {
            search: vec!["x.example".into()],
            options: vec!["ndots:5".into(), "timeout:1".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_content(host, false, &o),
            "nameserver 10.0.0.1\nsearch x.example\noptions ndots:5 timeout:1\n"
        );
        // `--dns-search .`: no search line at all.
        let o = DnsOverrides {
            search: vec![".".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_content(host, false, &o),
            "nameserver 10.0.0.1\noptions ndots:2\n"
        );
        // Overrides with only loopback on the host: the defaults.
        let o = DnsOverrides {
            options: vec!["rotate".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_content("nameserver 127.0.0.1\n", false, &o),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions rotate\n"
        );
    }

    #[test]
    fn writes_three_files() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let c = EtcConfig {
            hosts: HostsConfig {
                hostname: "box".into(),
                ip: Some("10.88.0.9".parse().unwrap()),
                ..Default::default()
            },
            host_resolv_conf: "nameserver 127.0.0.1\nnameserver 9.9.9.9\n".into(),
            ipv6: false,
            dns: DnsOverrides::default(),
        };
        let f = write_etc_files(tmp.path(), &c).unwrap();
        assert_eq!(f.hostname, tmp.path().join("hostname"));
        assert_eq!(fs::read_to_string(&f.hostname).unwrap(), "box\n");
        assert!(fs::read_to_string(&f.hosts)
            .unwrap()
            .ends_with("10.88.0.9\tbox\n"));
        assert_eq!(
            fs::read_to_string(&f.resolv_conf).unwrap(),
            "nameserver 9.9.9.9\n"
        );
        for p in [&f.hostname, &f.hosts, &f.resolv_conf] {
            assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o644);
        }
        // Rewriting replaces, and leaves no temp files.
        write_etc_files(tmp.path(), &c).unwrap();
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 3);
    }
}
