//! `coracle update [OPTIONS] CONTAINER...` (also `container update`): new resource
//! limits and restart policy for created, running or stopped containers, as docker's.
//! Values are parsed by `run`'s parsers; a zero value leaves a setting unchanged.

use crate::commands::run::{blkio_weight_on_host, parsed};
use crate::commands::UsageError;
use crate::Context;
use clap::Args;
use coracle_model::{self as o, OptionsError, UpdateOptions};

#[derive(Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, value_name = "UINT16")]
    pub blkio_weight: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,
    /// Refused: real-time CPU time needs a real-time budget on the parent cgroup,
    /// which coracle does not set up (nor does cgroup v2 have one)
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_rt_period: Option<String>,
    /// Refused, as --cpu-rt-period
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "INT", allow_negative_numbers = true)]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "DECIMAL")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "STRING")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "STRING")]
    pub cpuset_mems: Option<String>,
    /// Kernel memory limit (refused: no longer supported by the kernel)
    #[arg(long, value_name = "BYTES")]
    pub kernel_memory: Option<String>,
    /// Memory limit
    #[arg(short, long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "STRING")]
    pub restart: Option<String>,
    /// Containers to update, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Like docker: each container updated is printed as given; each failure is reported
/// and the command exits 1 if any failed. Bad flag values are usage errors (125).
pub fn exec(ctx: &Context, args: UpdateArgs) -> anyhow::Result<i32> {
    if !any_flag(&args) {
        // docker's message and status (a plain error, not a usage error).
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    let opts = to_update_options(&args)?;
    super::parallel::for_each_container(ctx, &args.containers, |e, c| {
        e.containers().update_container(c, &opts)
    })
}

fn any_flag(a: &UpdateArgs) -> bool {
    [
        &a.blkio_weight,
        &a.cpu_period,
        &a.cpu_quota,
        &a.cpu_shares,
        &a.cpus,
        &a.cpuset_cpus,
        &a.cpuset_mems,
        &a.memory,
        &a.memory_reservation,
        &a.memory_swap,
        &a.pids_limit,
        &a.restart,
        &a.kernel_memory,
        &a.cpu_rt_period,
        &a.cpu_rt_runtime,
    ]
    .iter()
    .any(|f| f.is_some())
}

fn usage(e: OptionsError) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// The flags as `run` parses them; what this host cannot limit is dropped with
/// docker's warning, as `run` drops it.
fn to_update_options(a: &UpdateArgs) -> anyhow::Result<UpdateOptions> {
    refuse_unsupported(a)?;
    let mut u = UpdateOptions::default();
    let r = &mut u.resources;
    r.memory = parsed(&a.memory, o::parse_memory).map_err(usage)?;
    r.memory_swap = parsed(&a.memory_swap, o::parse_memory_swap).map_err(usage)?;
    r.memory_reservation =
        parsed(&a.memory_reservation, o::parse_memory_reservation).map_err(usage)?;
    r.cpus = parsed(&a.cpus, o::parse_cpus).map_err(usage)?.flatten();
    r.cpu_shares = parsed(&a.cpu_shares, o::parse_cpu_shares).map_err(usage)?;
    r.cpu_period = cfs("--cpu-period", &a.cpu_period)?;
    r.cpu_quota = cfs("--cpu-quota", &a.cpu_quota)?;
    // An empty list leaves the cpuset as it is (docker's zero value).
    fn list(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|s| !s.is_empty())
    }
    r.cpuset_cpus = list(&a.cpuset_cpus)
        .map(o::parse_cpuset)
        .transpose()
        .map_err(usage)?;
    r.cpuset_mems = list(&a.cpuset_mems)
        .map(o::parse_cpuset_mems)
        .transpose()
        .map_err(usage)?;
    r.blkio_weight = blkio_weight_on_host(
        parsed(&a.blkio_weight, o::parse_blkio_weight)
            .map_err(usage)?
            .flatten(),
    );
    if r.memory.is_some_and(|m| m > 0) && r.memory_swap != Some(-1) && !o::host_has_swap_limit() {
        // docker's daemon: memory is then limited without swap.
        coracle_engine::process::note!("{}", o::SWAP_LIMIT_DISCARDED);
        r.memory_swap = Some(-1);
    }
    r.pids_limit = parsed(&a.pids_limit, o::parse_pids_limit_update)
        .map_err(usage)?
        .flatten();
    // docker's CLI parses the policy itself: a bad one fails with status 1.
    u.restart = a
        .restart
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(o::parse_restart)
        .transpose()?;
    Ok(u)
}

fn cfs(flag: &'static str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| o::parse_cpu_cfs(flag, s))
        .transpose()
        .map_err(usage)
}

/// Flags docker takes that cannot work here, refused naming why.
fn refuse_unsupported(a: &UpdateArgs) -> anyhow::Result<()> {
    let refuse = |option: &str, hint: &str| -> anyhow::Result<()> {
        Err(usage(OptionsError::Unsupported {
            option: option.into(),
            hint: hint.into(),
        }))
    };
    if a.kernel_memory.is_some() {
        return refuse(
            "--kernel-memory",
            "kernel memory limits are deprecated and no longer supported by the kernel (docker ignores the flag); leave it out",
        );
    }
    for (flag, v) in [
        ("--cpu-rt-period", &a.cpu_rt_period),
        ("--cpu-rt-runtime", &a.cpu_rt_runtime),
    ] {
        if v.is_some() {
            return refuse(
                flag,
                "real-time CPU time is granted only under a parent cgroup that has a real-time budget (dockerd's --cpu-rt-runtime), which coracle does not set up, and cgroup v2 has no real-time controls",
            );
        }
    }
    Ok(())
}
