//! `update`: new resource limits written over a container's spec (every later start
//! uses them), and the part of them a live container's cgroups are given.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use coracle_model::Resources;

/// The controllers an update touches (docker's update writes only those).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceChanges {
    /// memory, swap or reservation.
    pub memory: bool,
    /// CPUs, shares, CFS period or quota, cpusets.
    pub cpu: bool,
    pub pids: bool,
    pub blkio_weight: bool,
}

/// Writes `new`'s memory, CPU, pids and block I/O weight over the spec's resources.
/// What an update cannot change (devices, throttles, swappiness, the OOM killer)
/// stays as it is.
pub fn apply_update(res: &mut LinuxResources, new: &Resources) {
    let mut m = res.memory().unwrap_or_default();
    m.set_limit(new.memory);
    m.set_swap(new.memory_swap);
    m.set_reservation(new.memory_reservation);
    res.set_memory((m != LinuxMemory::default()).then_some(m));

    let mut c = res.cpu().clone().unwrap_or_default();
    c.set_quota(new.cpu_quota);
    c.set_period(new.cpu_period);
    c.set_shares(new.cpu_shares);
    c.set_cpus(new.cpuset_cpus.clone());
    c.set_mems(new.cpuset_mems.clone());
    res.set_cpu((c != LinuxCpu::default()).then_some(c));

    res.set_pids(new.pids_limit.map(|limit| {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        p
    }));

    let mut b = res.block_io().clone().unwrap_or_default();
    b.set_weight(new.blkio_weight);
    res.set_block_io((b != LinuxBlockIo::default()).then_some(b));
}

/// What a live container's cgroups get from the updated spec resources `res`: the
/// touched controllers with all their values (so that the kernel sees memory and swap
/// together, whatever order they must be written in), never the device rules.
pub fn live_resources(res: &LinuxResources, changes: ResourceChanges) -> LinuxResources {
    let mut live = LinuxResources::default();
    if changes.memory {
        live.set_memory(*res.memory());
    }
    if changes.cpu {
        live.set_cpu(res.cpu().clone());
    }
    if changes.pids {
        // No limit in the spec: the cgroup's must be lifted ("max").
        let mut p = LinuxPids::default();
        p.set_limit(res.pids().as_ref().map_or(-1, |p| p.limit()));
        live.set_pids(Some(p));
    }
    if changes.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(res.block_io().as_ref().and_then(|b| b.weight()));
        live.set_block_io(Some(b));
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_keeps_what_it_does_not_change() {
        let mut res = LinuxResources::default();
        let mut m = LinuxMemory::default();
        m.set_limit(Some(300 << 20));
        m.set_swap(Some(600 << 20));
        m.set_swappiness(Some(10));
        res.set_memory(Some(m));
        res.set_devices(Some(vec![Default::default()]));
        let new = Resources {
            memory: Some(500 << 20),
            memory_swap: Some(1000 << 20),
            cpu_shares: Some(512),
            pids_limit: Some(64),
            ..Default::default()
        };
        apply_update(&mut res, &new);
        let m = res.memory().unwrap();
        assert_eq!(
            (m.limit(), m.swap(), m.swappiness()),
            (Some(500 << 20), Some(1000 << 20), Some(10))
        );
        assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 64);
        assert_eq!(res.devices().as_ref().unwrap().len(), 1);
        assert!(res.block_io().is_none());

        let live = live_resources(
            &res,
            ResourceChanges {
                memory: true,
                ..Default::default()
            },
        );
        assert_eq!(live.memory().as_ref().unwrap().limit(), Some(500 << 20));
        assert!(live.cpu().is_none() && live.pids().is_none() && live.devices().is_none());

        // Lifting the pids limit: the spec has none, the cgroup gets "max".
        apply_update(
            &mut res,
            &Resources {
                pids_limit: None,
                ..new
            },
        );
        assert!(res.pids().is_none());
        let live = live_resources(
            &res,
            ResourceChanges {
                pids: true,
                ..Default::default()
            },
        );
        assert_eq!(live.pids().as_ref().unwrap().limit(), -1);
    }
}
