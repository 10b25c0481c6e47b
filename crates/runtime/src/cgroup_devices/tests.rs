use super::*;
use coracle_model::defaults::DEFAULT_DEVICE_RULES;

/// Runs `p` on one request the way the kernel would (only the opcodes we emit).
fn run(p: &[Insn], typ: i32, access: i32, major: i32, minor: i32) -> bool {
    let ctx = [
        ((access as u32) << 16) | typ as u32,
        major as u32,
        minor as u32,
    ];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = p[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        let mut next = pc + 1;
        match i.code {
            LDX_W => r[dst] = ctx[i.off as usize / 4] as u64,
            AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            RSH32_K => r[dst] = (r[dst] as u32 >> i.imm) as u64,
            MOV32_X => r[dst] = r[src] as u32 as u64,
            MOV64_K => r[dst] = i.imm as i64 as u64,
            JEQ_K | JNE_K | JNE_X => {
                let b = if i.code == JNE_X {
                    r[src]
                } else {
                    i.imm as u32 as u64
                };
                if (r[dst] == b) == (i.code == JEQ_K) {
                    next = pc + 1 + i.off as usize;
                }
            }
            EXIT => return r[0] == 1,
            c => panic!("opcode {c:#x} at {pc}"),
        }
        pc = next;
    }
}

fn rule(allow: bool, t: char, ma: Option<i64>, mi: Option<i64>, acc: &str) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(match t {
        'a' => LinuxDeviceType::A,
        'b' => LinuxDeviceType::B,
        _ => LinuxDeviceType::C,
    }));
    r.set_major(ma);
    r.set_minor(mi);
    r.set_access(Some(acc.to_string()));
    r
}

fn docker_default() -> Vec<LinuxDeviceCgroup> {
    DEFAULT_DEVICE_RULES
        .iter()
        .map(|&(a, t, ma, mi, acc)| rule(a, t, ma, mi, acc))
        .collect()
}

const R: i32 = ACC_READ;
const W: i32 = ACC_WRITE;
const M: i32 = ACC_MKNOD;

#[test]
fn default_rules_allow_the_standard_devices_and_only_mknod_of_others() {
    let p = program(&docker_default()).unwrap();
    for (ma, mi) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, 4),
    ] {
        assert!(run(&p, DEV_CHAR, R | W, ma, mi), "c {ma}:{mi} rw");
    }
    // mknod of anything, but no open of what was made
    assert!(run(&p, DEV_BLOCK, M, 7, 0));
    assert!(run(&p, DEV_CHAR, M, 10, 237));
    for (t, ma, mi) in [
        (DEV_BLOCK, 7, 0),
        (DEV_BLOCK, 254, 0),
        (DEV_CHAR, 1, 1),
        (DEV_CHAR, 10, 237),
    ] {
        assert!(!run(&p, t, R, ma, mi), "{t} {ma}:{mi} r");
        assert!(!run(&p, t, W, ma, mi), "{t} {ma}:{mi} w");
    }
    // block 1:3 is not /dev/null
    assert!(!run(&p, DEV_BLOCK, R, 1, 3));
    // /dev/fuse denied as docker does, mknod included
    assert!(!run(&p, DEV_CHAR, R, 10, 229));
    assert!(!run(&p, DEV_CHAR, M, 10, 229));
}

#[test]
fn an_added_device_is_allowed_with_its_permissions() {
    let mut rules = docker_default();
    rules.push(rule(true, 'c', Some(10), Some(237), "rw"));
    rules.push(rule(true, 'b', Some(7), Some(0), "r"));
    let p = program(&rules).unwrap();
    assert!(run(&p, DEV_CHAR, R | W, 10, 237));
    assert!(run(&p, DEV_BLOCK, R, 7, 0));
    assert!(!run(&p, DEV_BLOCK, R | W, 7, 0), "write not granted");
    assert!(!run(&p, DEV_BLOCK, R, 7, 1));
}

#[test]
fn the_last_matching_rule_wins_and_a_deny_takes_any_overlapping_access() {
    let p = program(&[
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), None, "rwm"),
        rule(false, 'c', Some(1), Some(3), "w"),
    ])
    .unwrap();
    assert!(run(&p, DEV_CHAR, R, 1, 3));
    assert!(!run(&p, DEV_CHAR, W, 1, 3));
    assert!(
        !run(&p, DEV_CHAR, R | W, 1, 3),
        "a partial deny still denies"
    );
    assert!(run(&p, DEV_CHAR, R | W, 1, 5));
}

#[test]
fn privileged_allows_everything() {
    let p = program(&[rule(true, 'a', None, None, "rwm")]).unwrap();
    assert_eq!(p.len(), 8, "load fields, then one verdict");
    for (t, ma, mi) in [(DEV_BLOCK, 7, 0), (DEV_BLOCK, 254, 0), (DEV_CHAR, 10, 229)] {
        assert!(run(&p, t, R | W | M, ma, mi));
    }
    // everything after an allow-all that denies again still counts
    let p = program(&[
        rule(true, 'a', None, None, "rwm"),
        rule(false, 'b', Some(8), None, "rwm"),
    ])
    .unwrap();
    assert!(!run(&p, DEV_BLOCK, R, 8, 0));
    assert!(run(&p, DEV_BLOCK, R, 7, 0));
}

#[test]
fn no_rules_deny_everything() {
    let p = program(&[]).unwrap();
    assert!(!run(&p, DEV_CHAR, R, 1, 3));
}

#[test]
fn bad_rules_and_paths_are_refused() {
    let e = program(&[rule(true, 'c', Some(1), Some(3), "rx")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = program(&[rule(true, 'c', Some(1 << 40), Some(3), "r")]).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    assert_eq!(
        cgroup_dir(Path::new("/coracle/abc")).unwrap(),
        Path::new("/sys/fs/cgroup/coracle/abc")
    );
    assert!(cgroup_dir(Path::new("/coracle/../../etc")).is_err());
}
