//! `ps`: the container list the way dockerd builds it (`daemon/list.go`): one query
//! for every record, filters applied in docker's order, newest first, and the status
//! text ("Up 3 minutes (healthy)", "Exited (0) 2 seconds ago") computed here, as the
//! daemon does. Nothing is read from disk per container except for sizes (`-s`).

mod select;

use crate::container_config::MountPoint;
use crate::filters::Filters;
use crate::{Containers, Engine, EngineError};
use chrono::{DateTime, Utc};
use coracle_state::{ContainerRecord, ContainerState};
use select::{unique_prefix, FilterState, Verdict};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Filter keys `ps` accepts.
const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "expose",
    "health",
    "id",
    "is-task",
    "isolation",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// docker's container states, the values `status=` accepts. No record is ever
/// `removing` or `dead` (see [`ContainerState`]): those match nothing.
const STATES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

const HEALTHS: &[&str] = &["none", "starting", "healthy", "unhealthy"];

/// One row of `ps` (docker's `container.Summary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    /// The image as given at create, or its id when that name now means another
    /// image (or none).
    pub image: String,
    pub image_id: String,
    /// `Path` and `Args`, arguments with spaces in single quotes.
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub state: ContainerState,
    pub status: String,
    /// none, starting, healthy or unhealthy.
    pub health: String,
    pub exit_code: i64,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<MountPoint>,
    pub networks: Vec<String>,
    /// Published ports while it runs.
    pub ports: Vec<coracle_core::PortMapping>,
    /// Bytes written by the container (its upper dir), with `size`.
    pub size_rw: Option<u64>,
    /// The image plus `size_rw`, with `size`.
    pub size_root_fs: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `-a`.
    pub all: bool,
    /// `-n` (`-l` is 1); 0 or less: no limit.
    pub limit: i64,
    /// `-s`.
    pub size: bool,
    pub filters: Filters,
}

/// What `ps` reads of the stored config: little, and skipped over quickly.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListView {
    created: String,
    path: String,
    args: Vec<String>,
    config: ListConfigView,
    host_config: ListHostView,
    mounts: Vec<MountPoint>,
    /// Records written before the full document kept the command here.
    cmd: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListConfigView {
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListHostView {
    network_mode: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct HealthView {
    status: String,
}

/// A record with what the filters and the row need from its config.
struct Candidate {
    record: ContainerRecord,
    created_nanos: i128,
    path: String,
    args: Vec<String>,
    labels: BTreeMap<String, String>,
    mounts: Vec<MountPoint>,
    network: String,
    health: String,
}

impl Candidate {
    fn new(record: ContainerRecord) -> Candidate {
        let mut view: ListView = serde_json::from_str(&record.config).unwrap_or_default();
        if view.path.is_empty() {
            if let Some(cmd) = view.cmd.take().filter(|c| !c.is_empty()) {
                view.path = cmd[0].clone();
                view.args = cmd[1..].to_vec();
            }
        }
        let created_nanos = DateTime::parse_from_rfc3339(&view.created)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .map_or(record.created_at as i128 * 1_000_000_000, i128::from);
        let health = record
            .health
            .as_deref()
            .and_then(|h| serde_json::from_str::<HealthView>(h).ok())
            .map(|h| {
                // moby: a check whose monitor has not reported yet counts as unhealthy.
                if h.status.is_empty() {
                    "unhealthy".to_string()
                } else {
                    h.status
                }
            })
            .unwrap_or_else(|| "none".into());
        Candidate {
            created_nanos,
            path: view.path,
            args: view.args,
            labels: view.config.labels,
            mounts: view.mounts,
            network: view.host_config.network_mode,
            health,
            record,
        }
    }

    /// Running, paused and restarting containers count as running (docker's
    /// `State.Running`).
    fn running(&self) -> bool {
        self.record.is_active()
    }
}

/// docker/go-units `HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_milliseconds() as f64 / 1000.0;
    let secs = seconds as i64;
    let minutes = (seconds / 60.0) as i64;
    let hours = (seconds / 3600.0 + 0.5) as i64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (seconds / 3600.0) as i64 / 24 / 365)
    }
}

fn since(t: Option<&str>, now: DateTime<Utc>) -> String {
    let elapsed = t
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| now.signed_duration_since(t))
        .unwrap_or_default();
    human_duration(elapsed)
}

/// docker's `State.String()`: the STATUS column.
pub fn status_text(c: &ContainerRecord, health: &str, now: DateTime<Utc>) -> String {
    let up = || format!("Up {}", since(c.started_at.as_deref(), now));
    match c.state {
        ContainerState::Running => match health {
            "none" => up(),
            "starting" => format!("{} (health: starting)", up()),
            h => format!("{} ({h})", up()),
        },
        ContainerState::Paused => format!("{} (Paused)", up()),
        ContainerState::Restarting => format!(
            "Restarting ({}) {} ago",
            c.exit_code.unwrap_or(0),
            since(c.finished_at.as_deref(), now)
        ),
        ContainerState::Created => "Created".into(),
        ContainerState::Exited if c.started_at.is_none() => "Created".into(),
        ContainerState::Exited if c.finished_at.is_none() => String::new(),
        ContainerState::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code.unwrap_or(0),
            since(c.finished_at.as_deref(), now)
        ),
    }
}

/// `Path` and `Args` as the COMMAND column shows them.
pub fn command_text(path: &str, args: &[String]) -> String {
    if args.is_empty() {
        return path.to_string();
    }
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    format!("{path} {}", args.join(" "))
}

/// The networks a container is on, as `ps` names them.
pub(crate) fn network_names(mode: &str) -> Vec<String> {
    if mode.is_empty() {
        Vec::new()
    } else {
        vec![mode.to_string()]
    }
}

impl Containers<'_> {
    /// `ps`: containers newest first, filtered as docker filters them.
    pub fn list_containers(
        &mut self,
        opts: &ListOptions,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let checked = CheckedFilters::of(opts)?;
        let candidates = self.sorted_candidates()?;
        let list_opts = ListOptions {
            all: checked.all,
            ..opts.clone()
        };
        let mut state = self.filter_state(&candidates, &list_opts, &checked)?;
        let now = Utc::now();
        let mut image_names: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        for c in candidates {
            if !self.ports_match(&c, &checked)? {
                continue;
            }
            match state.verdict(&c) {
                Verdict::Exclude => continue,
                Verdict::Stop => break,
                Verdict::Include => {}
            }
            out.push(self.summary(c, &mut image_names, opts.size, now)?);
        }
        Ok(out)
    }

    /// Every container, newest first.
    fn sorted_candidates(&mut self) -> Result<Vec<Candidate>, EngineError> {
        let mut candidates: Vec<Candidate> = self
            .container_records()?
            .into_iter()
            .map(Candidate::new)
            .collect();
        // Creation to the nanosecond, as docker sorts (records keep whole seconds).
        candidates.sort_by(|a, b| {
            b.created_nanos
                .cmp(&a.created_nanos)
                .then_with(|| a.record.id.cmp(&b.record.id))
        });
        Ok(candidates)
    }

    /// The filters that name containers or images, resolved against `candidates`.
    fn filter_state<'o>(
        &self,
        candidates: &[Candidate],
        list_opts: &'o ListOptions,
        checked: &CheckedFilters,
    ) -> Result<FilterState<'o>, EngineError> {
        let f = &list_opts.filters;
        // docker's idOrNameFilter: an id or id prefix, else a name.
        let by_key = |key: &str| -> Result<String, EngineError> {
            unique_prefix(candidates, key)
                .or_else(|| {
                    let name = key.trim_start_matches('/');
                    candidates
                        .iter()
                        .find(|c| c.record.name == name)
                        .map(|c| c.record.id.clone())
                })
                .ok_or_else(|| EngineError::NoSuchContainer(key.to_string()))
        };
        let mut before = None;
        for v in f.get("before") {
            before = Some(by_key(v)?);
        }
        let mut since = None;
        for v in f.get("since") {
            since = Some(by_key(v)?);
        }
        let ids = f.contains("id").then(|| {
            f.get("id")
                .filter_map(|p| unique_prefix(candidates, p))
                .collect::<Vec<_>>()
        });
        let ancestors = if f.contains("ancestor") {
            // An unknown image matches nothing (docker logs a warning and goes on).
            Some(
                f.get("ancestor")
                    .filter_map(|a| self.find_image_id(a).ok())
                    .map(|d| d.to_string())
                    .collect(),
            )
        } else {
            None
        };
        Ok(FilterState {
            opts: list_opts,
            before,
            since,
            ancestors,
            exited: checked.exited.clone(),
            is_task: checked.is_task,
            ids,
            included: 0,
        })
    }

    /// Whether a container passes the `publish` and `expose` filters.
    fn ports_match(&self, c: &Candidate, checked: &CheckedFilters) -> Result<bool, EngineError> {
        let (publish, expose) = (&checked.publish, &checked.expose);
        if !publish.is_empty() {
            // docker matches the `-p` container ports (HostConfig.PortBindings, in
            // any state); the host ports a running container publishes match too.
            let stored = crate::container_config::StoredConfig::parse(&c.record.config);
            let mut ports: Vec<_> = stored
                .host_config
                .port_bindings
                .keys()
                .filter_map(|k| coracle_model::parse_exposed_key(k))
                .map(|e| (e.port, e.proto))
                .collect();
            for m in self.published_ports(&c.record.id)? {
                ports.push((m.container_port, m.proto));
                if let Some(host_port) = m.host_port() {
                    ports.push((host_port, m.proto));
                }
            }
            if !publish
                .iter()
                .any(|p| ports.iter().any(|(port, proto)| p.matches(*port, *proto)))
            {
                return Ok(false);
            }
        }
        if !expose.is_empty() {
            let stored = crate::container_config::StoredConfig::parse(&c.record.config);
            let exposed: Vec<_> = stored
                .config
                .exposed_ports
                .iter()
                .flat_map(|m| m.keys())
                .filter_map(|k| coracle_model::parse_exposed_key(k))
                .collect();
            if !expose
                .iter()
                .any(|p| exposed.iter().any(|e| p.matches(e.port, e.proto)))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A listed container's row; `image_names` remembers the image names resolved.
    fn summary(
        &self,
        c: Candidate,
        image_names: &mut HashMap<String, String>,
        size: bool,
        now: DateTime<Utc>,
    ) -> Result<ContainerSummary, EngineError> {
        let image_id = c.record.image_id.to_string();
        let image = match image_names.get(&c.record.image_name) {
            Some(resolved) => resolved.clone(),
            None => {
                let resolved = self.image_shown(&c.record.image_name, &image_id);
                image_names.insert(c.record.image_name.clone(), resolved.clone());
                resolved
            }
        };
        let (size_rw, size_root_fs) = if size {
            let (rw, root) = self.container_sizes(&c.record);
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        Ok(ContainerSummary {
            id: c.record.id.clone(),
            name: c.record.name.clone(),
            image: if image == image_id {
                image_id.clone()
            } else {
                image
            },
            command: command_text(&c.path, &c.args),
            created: c.record.created_at,
            status: status_text(&c.record, &c.health, now),
            state: c.record.state,
            exit_code: c.record.exit_code.unwrap_or(0),
            networks: network_names(&c.network),
            ports: if c.record.is_active() {
                self.published_ports(&c.record.id)?
            } else {
                Vec::new()
            },
            health: c.health,
            labels: c.labels,
            mounts: c.mounts,
            image_id,
            size_rw,
            size_root_fs,
        })
    }
}

impl Engine {
    /// The name a container's image was given at create while it still names that
    /// image; else the image id (docker's `refreshImage`).
    fn image_shown(&self, name: &str, image_id: &str) -> String {
        if name == image_id {
            return name.to_string();
        }
        match self.find_image_id(name) {
            Ok(id) if id.to_string() == image_id => name.to_string(),
            _ => image_id.to_string(),
        }
    }

    /// (bytes in the writable layer, those plus the image's): docker's `SizeRw` and
    /// `SizeRootFs`.
    pub(crate) fn container_sizes(&self, c: &ContainerRecord) -> (u64, u64) {
        let rw = self
            .container_config(&c.id)
            .ok()
            .map(|cfg| match &cfg.rootfs.kind {
                coracle_rootfs::snapshot::RootfsKind::Overlay { upper, .. } => upper.clone(),
                coracle_rootfs::snapshot::RootfsKind::Copy => cfg.rootfs.target.clone(),
            })
            .and_then(|dir| crate::images::unpack::tree_size(&dir).ok())
            .unwrap_or(0);
        let image = self
            .db
            .image(&c.image_id)
            .ok()
            .flatten()
            .map_or(0, |i| i.size());
        (rw, image + rw)
    }
}

/// A `publish=`/`expose=` filter: a container port or range, tcp unless given.
struct PortFilter {
    lo: u16,
    hi: u16,
    proto: coracle_core::Protocol,
}

impl PortFilter {
    fn matches(&self, port: u16, proto: coracle_core::Protocol) -> bool {
        proto == self.proto && (self.lo..=self.hi).contains(&port)
    }
}

/// The `ps` filters checked before any container is read, with what they parse to.
struct CheckedFilters {
    publish: Vec<PortFilter>,
    expose: Vec<PortFilter>,
    exited: Vec<i64>,
    /// `-a`, or implied by a `status` filter.
    all: bool,
    is_task: Option<bool>,
}

impl CheckedFilters {
    /// Checks the filters in docker's order, with its messages.
    fn of(opts: &ListOptions) -> Result<CheckedFilters, EngineError> {
        let f = &opts.filters;
        let publish = port_filters(f, "publish")?;
        let expose = port_filters(f, "expose")?;
        f.validate(ACCEPTED)?;
        let mut exited = Vec::new();
        for v in f.get("exited") {
            exited.push(v.parse::<i64>().map_err(|_| {
                EngineError::InvalidArgument(format!(
                    "invalid filter 'exited={v}': strconv.Atoi: parsing {v:?}: invalid syntax"
                ))
            })?);
        }
        let mut all = opts.all;
        for v in f.get("status") {
            if !STATES.contains(&v) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'status={v}': invalid value for state ({v}): must be one of {}",
                    STATES.join(", ")
                )));
            }
            all = true;
        }
        let is_task = f.get_bool("is-task")?;
        for v in f.get("health") {
            if !HEALTHS.contains(&v) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'health={v}': invalid value for health ({v}): must be one of {}",
                    HEALTHS.join(", ")
                )));
            }
        }
        Ok(CheckedFilters {
            publish,
            expose,
            exited,
            all,
            is_task,
        })
    }
}

fn port_filters(f: &Filters, key: &str) -> Result<Vec<PortFilter>, EngineError> {
    f.get(key)
        .map(|v| {
            let bad = || EngineError::InvalidArgument(format!("invalid filter '{key}={v}'"));
            let (ports, proto) = v.split_once('/').unwrap_or((v, "tcp"));
            let proto = match proto {
                "tcp" => coracle_core::Protocol::Tcp,
                "udp" => coracle_core::Protocol::Udp,
                _ => return Err(bad()),
            };
            let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
            let (lo, hi) = (
                lo.parse::<u16>().map_err(|_| bad())?,
                hi.parse::<u16>().map_err(|_| bad())?,
            );
            if lo > hi {
                return Err(bad());
            }
            Ok(PortFilter { lo, hi, proto })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A created-then-`state` record named `web` (shared with `select`'s tests).
    pub(crate) fn record(state: ContainerState) -> ContainerRecord {
        let mut r = ContainerRecord::new_created(
            "c".repeat(64),
            "web".into(),
            coracle_core::Digest::sha256_of(b"img"),
            "box".into(),
            0,
            "{}".into(),
        );
        r.state = state;
        r
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn status_texts_as_docker() {
        let mut r = record(ContainerState::Created);
        assert_eq!(status_text(&r, "none", now()), "Created");
        r.state = ContainerState::Running;
        r.started_at = Some("2024-05-01T11:57:00Z".into());
        assert_eq!(status_text(&r, "none", now()), "Up 3 minutes");
        assert_eq!(status_text(&r, "healthy", now()), "Up 3 minutes (healthy)");
        assert_eq!(
            status_text(&r, "starting", now()),
            "Up 3 minutes (health: starting)"
        );
        assert_eq!(
            status_text(&r, "unhealthy", now()),
            "Up 3 minutes (unhealthy)"
        );
        r.state = ContainerState::Paused;
        assert_eq!(status_text(&r, "none", now()), "Up 3 minutes (Paused)");
        r.state = ContainerState::Restarting;
        r.exit_code = Some(1);
        r.finished_at = Some("2024-05-01T11:59:55Z".into());
        assert_eq!(
            status_text(&r, "none", now()),
            "Restarting (1) 5 seconds ago"
        );
        r.state = ContainerState::Exited;
        r.exit_code = Some(0);
        r.finished_at = Some("2024-05-01T11:59:58.5Z".into());
        assert_eq!(status_text(&r, "none", now()), "Exited (0) 1 second ago");
        r.finished_at = Some("2024-05-01T11:59:59.9Z".into());
        assert_eq!(
            status_text(&r, "none", now()),
            "Exited (0) Less than a second ago"
        );
    }

    #[test]
    fn durations_as_go_units() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(-5)), "Less than a second");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        assert_eq!(human_duration(s(5399)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(15 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(61 * 86400)), "2 months");
        assert_eq!(human_duration(s(731 * 86400)), "2 years");
    }

    #[test]
    fn command_quotes_arguments_with_spaces() {
        assert_eq!(command_text("sleep", &[]), "sleep");
        assert_eq!(
            command_text("sh", &["-c".into(), "echo hi".into()]),
            "sh -c 'echo hi'"
        );
    }
}
