//! A named network namespace per test, so that bridges, veths and nftables tables that
//! coracle creates never touch the host's network.
//!
//! Commands enter the namespace with `setns(CLONE_NEWNET)` between fork and exec rather
//! than through `ip netns exec`: the latter also makes a private mount namespace, and
//! the overlays coracle's monitors mount must stay visible to later commands.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static COUNTER: AtomicU32 = AtomicU32::new(0);
// `ip netns add` turns /run/netns into a shared mount point the first time; two
// concurrent first calls race on that, so creations in this process go one at a time.
static CREATE: Mutex<()> = Mutex::new(());

/// A network namespace at /run/netns/NAME with `lo` up; deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `coracle-t-<pid>-<counter>-<random>` and brings its `lo` up.
    pub fn new() -> NetNs {
        let mut rnd = [0u8; 4];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut rnd))
            .expect("read /dev/urandom");
        let name = format!(
            "coracle-t-{}-{}-{:02x}{:02x}{:02x}{:02x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rnd[0],
            rnd[1],
            rnd[2],
            rnd[3]
        );
        {
            let _g = CREATE.lock().unwrap_or_else(|e| e.into_inner());
            run_ok(Command::new("ip").args(["netns", "add", &name]));
        }
        let ns = NetNs { name };
        run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file (`/run/netns/NAME`), for `nsenter --net=` and setns.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `nsenter --net=PATH`, to prefix shell command lines with.
    pub fn nsenter_prefix(&self) -> String {
        format!("nsenter --net={}", self.path().display())
    }

    /// `program` run inside this namespace (network namespace only).
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        self.enter(&mut c);
        c
    }

    /// Makes `command` enter this namespace between fork and exec.
    pub fn enter(&self, command: &mut Command) {
        let path = self.path();
        let fd: Arc<OwnedFd> = Arc::new(
            File::open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
                .into(),
        );
        // SAFETY: the closure only makes the setns system call, which is
        // async-signal-safe, and touches no lock or allocation.
        unsafe {
            command.pre_exec(move || {
                rustix::thread::move_into_link_name_space(
                    fd.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(std::io::Error::from)
            });
        }
    }

    /// Runs `f` on a new thread that has entered this namespace (sockets it opens live
    /// there) and returns its result.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        let fd: OwnedFd = File::open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
            .into();
        std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                fd.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the test network namespace");
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Names of the links in the namespace (`ip -j link`).
    pub fn links(&self) -> Vec<String> {
        let out = run_ok(Command::new("ip").args(["-n", &self.name, "-j", "link", "show"]));
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j link prints JSON");
        let mut names: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["ifname"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// IPv4 addresses (address/prefix) of `link` in the namespace.
    pub fn ipv4_addresses(&self, link: &str) -> Vec<String> {
        let out = run_ok(
            Command::new("ip").args(["-n", &self.name, "-j", "-4", "addr", "show", "dev", link]),
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j addr prints JSON");
        v.as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| {
                Some(format!(
                    "{}/{}",
                    a["local"].as_str()?,
                    a["prefixlen"].as_u64()?
                ))
            })
            .collect()
    }

    /// `nft list ruleset` inside the namespace.
    pub fn ruleset(&self) -> String {
        run_ok(self.cmd("nft").args(["list", "ruleset"]))
    }

    /// A link `hostaddr0` holding `cidr` (e.g. "192.0.2.10/24"), up: stands for the
    /// host's own address in tests of published ports. A veth pair (peer `hostaddr0p`,
    /// also up, so the link has carrier) rather than a dummy link: kernels without
    /// modules often lack the dummy driver, and veth is needed by coracle anyway.
    pub fn add_host_address(&self, cidr: &str) {
        let ip = |args: &[&str]| {
            let mut all = vec!["-n", self.name.as_str()];
            all.extend_from_slice(args);
            run_ok(Command::new("ip").args(&all));
        };
        ip(&[
            "link",
            "add",
            "hostaddr0",
            "type",
            "veth",
            "peer",
            "name",
            "hostaddr0p",
        ]);
        ip(&["addr", "add", cidr, "dev", "hostaddr0"]);
        ip(&["link", "set", "hostaddr0p", "up"]);
        ip(&["link", "set", "hostaddr0", "up"]);
    }

    /// `GET path` over HTTP/1.0 to `addr` from inside the namespace: the status code and
    /// body, or the I/O error (refused, timed out...).
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
        let path = path.to_string();
        self.run_in(move || http_get(addr, &path))
    }
}

impl Default for NetNs {
    fn default() -> NetNs {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Plain HTTP/1.0 GET in the calling thread's namespace, 2 s timeouts.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let t = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, t)?;
    s.set_read_timeout(Some(t))?;
    s.set_write_timeout(Some(t))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {text:?}"),
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn run_ok(c: &mut Command) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", c.get_program()));
    assert!(
        out.status.success(),
        "{:?} {:?} failed: {}",
        c.get_program(),
        c.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
