use super::*;
use std::fs;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fixture tree removed on drop (the crate has no tempfile dependency).
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "coracle-cgstats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Fixture { dir }
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn proc(&self) -> PathBuf {
        self.dir.join("proc")
    }

    fn mountinfo(&self, lines: &[(&str, &str, &str)]) {
        let mut text = String::from(
            "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
             23 22 0:21 / /proc rw - proc proc rw\n",
        );
        for (i, (point, fstype, sup)) in lines.iter().enumerate() {
            let point = self.dir.join(point);
            text.push_str(&format!(
                "{} 22 0:{} / {} rw,nosuid shared:{} - {} cgroup {}\n",
                30 + i,
                30 + i,
                point.display(),
                5 + i,
                fstype,
                sup
            ));
        }
        self.write("proc/self/mountinfo", &text);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const ID: &str = "0123abcd";

/// This host's layout: v1 controllers in their own hierarchies (cpu and cpuacct
/// apart), unified mounted with no controllers, the container at the unified root.
fn hybrid() -> Fixture {
    let f = Fixture::new();
    f.mountinfo(&[
        ("cg/cpu", "cgroup", "rw,cpu"),
        ("cg/cpuacct", "cgroup", "rw,cpuacct"),
        ("cg/memory", "cgroup", "rw,memory"),
        ("cg/blkio", "cgroup", "rw,blkio"),
        ("cg/pids", "cgroup", "rw,pids"),
        ("cg/systemd", "cgroup", "rw,xattr,name=systemd"),
        ("cg/unified", "cgroup2", "rw,nsdelegate"),
    ]);
    let path = format!("/coracle/{ID}");
    f.write(
        "proc/42/cgroup",
        &format!(
            "10:hugetlb:{path}\n9:name=systemd:/\n8:pids:{path}\n7:blkio:{path}\n\
             4:memory:{path}\n2:cpuacct:{path}\n1:cpu:{path}\n0::/\n"
        ),
    );
    f.write("cg/unified/cgroup.procs", "1\n42\n43\n99\n");
    f.write(
        &format!("cg/cpuacct/coracle/{ID}/cpuacct.usage"),
        "24247816\n",
    );
    let mem = format!("cg/memory/coracle/{ID}");
    f.write(&format!("{mem}/memory.usage_in_bytes"), "5000000\n");
    f.write(&format!("{mem}/memory.limit_in_bytes"), "67108864\n");
    f.write(
        &format!("{mem}/memory.stat"),
        "cache 4096\nrss 49152\ninactive_file 1\ntotal_inactive_file 1000000\n",
    );
    f.write(&format!("cg/pids/coracle/{ID}/pids.current"), "2\n");
    f.write(&format!("cg/pids/coracle/{ID}/cgroup.procs"), "43\n42\n");
    f.write(&format!("cg/memory/coracle/{ID}/cgroup.procs"), "42\n");
    f.write(
        &format!("cg/blkio/coracle/{ID}/blkio.throttle.io_service_bytes_recursive"),
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n\
         8:0 Total 12288\n8:16 Read 100\n8:16 Write 0\nTotal 12388\n",
    );
    f.write(
        &format!("cg/blkio/coracle/{ID}/blkio.bfq.io_service_bytes_recursive"),
        "8:0 Read 1\n8:0 Write 1\nTotal 2\n",
    );
    f
}

fn pure_v2() -> Fixture {
    let f = Fixture::new();
    f.mountinfo(&[("cg", "cgroup2", "rw,nsdelegate,memory_recursiveprot")]);
    f.write("proc/7/cgroup", &format!("0::/coracle/{ID}\n"));
    let d = format!("cg/coracle/{ID}");
    f.write(
        &format!("{d}/cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    f.write(
        &format!("{d}/cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    );
    f.write(&format!("{d}/memory.current"), "2097152\n");
    f.write(&format!("{d}/memory.max"), "max\n");
    f.write(
        &format!("{d}/memory.stat"),
        "anon 1048576\nfile 1048576\ninactive_file 524288\nactive_file 0\n",
    );
    f.write(&format!("{d}/pids.current"), "3\n");
    f.write(&format!("{d}/cgroup.procs"), "7\n8\n9\n");
    f.write(
        &format!("{d}/io.stat"),
        "8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n\
         259:0 rbytes=24 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    );
    f
}

#[test]
fn hybrid_host_reads_the_v1_hierarchies() {
    let f = hybrid();
    let fs = CgroupFs::load(&f.proc()).unwrap();
    let s = fs.stats(42).unwrap();
    assert_eq!(
        s,
        CgroupStats {
            cpu_usage_ns: 24247816,
            memory_usage: 5000000,
            memory_inactive_file: Some(1000000),
            memory_limit: Some(67108864),
            pids_current: 2,
            io_read_bytes: 4196,
            io_write_bytes: 8192,
        }
    );
    assert_eq!(s.memory_usage_no_cache(), 4000000);
}

#[test]
fn hybrid_host_pids_come_from_v1_not_the_unified_root() {
    let f = hybrid();
    let fs = CgroupFs::load(&f.proc()).unwrap();
    // The unified path is `/`: its cgroup.procs is every process on the machine.
    assert_eq!(fs.pids(42).unwrap(), vec![42, 43]);
    // Without a pids hierarchy, the memory one.
    fs::remove_file(f.dir.join(format!("cg/pids/coracle/{ID}/cgroup.procs"))).unwrap();
    assert_eq!(fs.pids(42).unwrap(), vec![42]);
}

#[test]
fn pure_v2_host() {
    let f = pure_v2();
    let fs = CgroupFs::load(&f.proc()).unwrap();
    let s = fs.stats(7).unwrap();
    assert_eq!(s.cpu_usage_ns, 1_500_000);
    assert_eq!(s.memory_usage, 2097152);
    assert_eq!(s.memory_limit, None);
    assert_eq!(s.memory_usage_no_cache(), 2097152 - 524288);
    assert_eq!(s.pids_current, 3);
    assert_eq!((s.io_read_bytes, s.io_write_bytes), (1024, 2000));
    assert_eq!(fs.pids(7).unwrap(), vec![7, 8, 9]);
}

#[test]
fn v2_limit_and_missing_controllers() {
    let f = pure_v2();
    let d = format!("cg/coracle/{ID}");
    f.write(&format!("{d}/memory.max"), "67108864\n");
    let fs = CgroupFs::load(&f.proc()).unwrap();
    assert_eq!(fs.stats(7).unwrap().memory_limit, Some(67108864));
    // No io controller: no block I/O, the rest still reads.
    f.write(&format!("{d}/cgroup.controllers"), "cpu memory pids\n");
    let s = fs.stats(7).unwrap();
    assert_eq!((s.io_read_bytes, s.io_write_bytes), (0, 0));
    // No memory controller: an error naming it.
    f.write(&format!("{d}/cgroup.controllers"), "cpu pids\n");
    let e = fs.stats(7).unwrap_err();
    assert!(
        matches!(
            e,
            CgroupStatsError::NoCgroup {
                controller: "memory",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), coracle_core::ErrorKind::NotFound);
}

#[test]
fn gone_process_is_not_found() {
    let f = pure_v2();
    let fs = CgroupFs::load(&f.proc()).unwrap();
    let e = fs.stats(12345).unwrap_err();
    assert_eq!(e.kind(), coracle_core::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("12345/cgroup"), "{e}");
}

#[test]
fn no_own_cgroup_falls_back_to_the_process_tree() {
    let f = Fixture::new();
    f.mountinfo(&[("cg", "cgroup2", "rw")]);
    f.write("cg/cgroup.procs", "1\n5\n6\n7\n8\n");
    f.write("proc/5/cgroup", "0::/\n");
    f.write("proc/1/stat", "1 (init) S 0 1 1 0\n");
    f.write("proc/5/stat", "5 (sh) S 1 5 5 0\n");
    // A comm with spaces and parentheses.
    f.write("proc/6/stat", "6 (a) b (c) S 5 5 5 0\n");
    f.write("proc/7/stat", "7 (sleep) S 6 5 5 0\n");
    f.write("proc/8/stat", "8 (other) S 1 8 8 0\n");
    let fs = CgroupFs::load(&f.proc()).unwrap();
    assert_eq!(fs.pids(5).unwrap(), vec![5, 6, 7]);
}

#[test]
fn mount_roots_and_escapes() {
    let f = Fixture::new();
    // A cgroup namespace's view: the mount's root is the container's cgroup, and the
    // mount point has a space in it.
    let point = f.dir.join("cg v2");
    f.write(
        "proc/self/mountinfo",
        &format!(
            "30 22 0:30 /coracle {} rw - cgroup2 cgroup2 rw\n",
            point.display().to_string().replace(' ', "\\040")
        ),
    );
    f.write("proc/3/cgroup", "0::/coracle/x\n");
    f.write("cg v2/x/cgroup.procs", "3\n4\n");
    let fs = CgroupFs::load(&f.proc()).unwrap();
    assert_eq!(fs.pids(3).unwrap(), vec![3, 4]);
}

#[test]
fn system_cpu_memory_and_network() {
    let f = hybrid();
    f.write(
        "proc/stat",
        "cpu  100 20 30 1000 5 1 2 7 0 0\ncpu0 50 10 15 500 2 0 1 3 0 0\n\
         cpu1 50 10 15 500 3 1 1 4 0 0\nintr 123\nctxt 456\n",
    );
    f.write(
        "proc/meminfo",
        "MemTotal:       24683656 kB\nMemFree:        20405312 kB\n",
    );
    let fs = CgroupFs::load(&f.proc()).unwrap();
    let cpu = fs.system_cpu().unwrap();
    assert_eq!(cpu.online_cpus, 2);
    // user..softirq (steal excluded), in ns at the kernel's clock tick.
    assert_eq!(cpu.total_ns, 1158 * 1_000_000_000 / clock_ticks());
    assert_eq!(fs.host_memory().unwrap(), 24683656 * 1024);

    f.write(
        "proc/42/net/dev",
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
         lo:    500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  \
         eth0:   1296      12    0    0    0     0          0         0     936       8    0    0    0     0       0          0\n  \
         eth1:      4       1    0    0    0     0          0         0       6       1    0    0    0     0       0          0\n",
    );
    f.write("proc/42/ns/net", "");
    f.write("proc/self/ns/net", "");
    assert_eq!(
        fs.net(42).unwrap(),
        NetStats {
            rx_bytes: 1300,
            tx_bytes: 942
        }
    );
    // The host's own namespace (`--network host`): nothing, as docker.
    fs::remove_file(f.dir.join("proc/42/ns/net")).unwrap();
    std::os::unix::fs::symlink(f.dir.join("proc/self/ns/net"), f.dir.join("proc/42/ns/net"))
        .unwrap();
    assert_eq!(fs.net(42).unwrap(), NetStats::default());
}

#[test]
fn docker_memory_usage_without_cache() {
    let s = |usage, inactive| CgroupStats {
        memory_usage: usage,
        memory_inactive_file: inactive,
        ..Default::default()
    };
    assert_eq!(s(100, Some(30)).memory_usage_no_cache(), 70);
    assert_eq!(s(100, Some(100)).memory_usage_no_cache(), 100);
    assert_eq!(s(100, None).memory_usage_no_cache(), 100);
}

/// The real host: this process's own cgroups read without error, and the machine's
/// counters are sane.
#[test]
fn reads_the_real_host() {
    let fs = CgroupFs::host().unwrap();
    let cpu = fs.system_cpu().unwrap();
    assert!(cpu.online_cpus >= 1);
    assert!(cpu.total_ns > 0);
    assert!(fs.host_memory().unwrap() > 64 << 20);
    let me = std::process::id();
    let pids = fs.pids(me).unwrap();
    assert!(pids.contains(&me), "{pids:?}");
    // Our own netns is the host's: nothing counted.
    assert_eq!(fs.net(me).unwrap(), NetStats::default());
}
