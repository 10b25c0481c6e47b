//! The health state in the container's record: what the monitor calls at start and
//! stop, and one probe's run from start to the recorded result.

use super::{apply_probe, Health, ProbeResult};
use crate::{Containers, Engine, EngineError};
use chrono::{DateTime, Utc};
use coracle_model::HealthConfig;
use coracle_state::ContainerState;

impl Engine {
    /// Called by the monitor each time the container (re)starts: the check begins
    /// again as `starting` with no failures, keeping earlier results (docker's
    /// `initHealthMonitor`). A container without a check has no health state.
    pub(crate) fn reset_health(&mut self, id: &str) -> Result<(), EngineError> {
        let cfg = self.container_config(id)?;
        let record = self
            .db
            .container(id)?
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_string()))?;
        if !cfg.health.as_ref().is_some_and(has_probe) {
            if record.health.is_some() {
                self.db.set_container_health(id, None)?;
            }
            return Ok(());
        }
        let log = Health::of(&record).map(|h| h.log).unwrap_or_default();
        let json = serde_json::to_string(&Health::starting(log)).expect("health serialises");
        self.db.set_container_health(id, Some(&json))?;
        Ok(())
    }

    /// Called by the monitor when the container stops running (exits, before any
    /// restart) and by `pause`: its checks stop, and docker then shows it unhealthy
    /// until a probe after `unpause` succeeds or a restart resets it. No-op without a
    /// health state.
    pub(crate) fn stop_health(&mut self, id: &str) -> Result<(), EngineError> {
        let record = self
            .db
            .container(id)?
            .ok_or_else(|| EngineError::NoSuchContainer(id.to_string()))?;
        if let Some(h) = Health::of(&record) {
            let json = serde_json::to_string(&h.stopped()).expect("health serialises");
            self.db.set_container_health(id, Some(&json))?;
        }
        Ok(())
    }
}

impl Containers<'_> {
    /// Runs the container's health check once and records the result. Does nothing
    /// when the container has no check or is not running, and records nothing when it
    /// stopped or restarted while the probe ran. Call from a single-threaded process:
    /// the probe is forked into the container.
    pub fn run_health_probe(&mut self, key: &str) -> Result<(), EngineError> {
        let before = self.find_container(key)?;
        if before.state != ContainerState::Running {
            return Ok(());
        }
        let cfg = self.container_config(&before.id)?;
        let Some(check) = cfg.health.filter(has_probe) else {
            return Ok(());
        };
        let cmd = check.command().expect("has_probe checked the command");
        let start = Utc::now();
        let (exit_code, output) = match self.probe(&before.id, &cmd, check.timeout()) {
            Ok(r) => r,
            Err(message) => (-1, message),
        };
        let result = ProbeResult {
            start,
            end: Utc::now(),
            exit_code,
            output,
        };
        let Some(now) = self.db.container(&before.id)? else {
            return Ok(());
        };
        let same_run = now.state == ContainerState::Running
            && now.started_at == before.started_at
            && now.init_pid == before.init_pid;
        // A probe ended by the container's own exit says nothing about its health; the
        // monitor may not have recorded that exit yet.
        if !same_run || !now.init_pid.is_none_or(init_alive) {
            return Ok(());
        }
        let started_at = now
            .started_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let health = apply_probe(Health::of(&now), result, &check, started_at);
        let json = serde_json::to_string(&health).expect("health serialises");
        self.db.set_container_health(&now.id, Some(&json))?;
        Ok(())
    }
}

/// A check docker would run: `CMD`/`CMD-SHELL` with a command (`NONE`, an empty test
/// or an unknown type: no probe, as moby's `getProbe`).
fn has_probe(h: &HealthConfig) -> bool {
    h.enabled() && h.command().is_some()
}

/// Whether the container's init still runs: a zombie (exited, not yet reaped by the
/// monitor) does not. pid 0: not recorded (nothing to check).
fn init_alive(pid: i64) -> bool {
    if pid <= 0 {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may itself
        // contain spaces or parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check, result};
    use super::super::{STARTING, UNHEALTHY};
    use super::*;
    use coracle_state::ContainerRecord;
    use std::time::Duration;

    #[test]
    fn probes_only_for_cmd_and_cmd_shell() {
        let with = |test: &[&str]| HealthConfig {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(has_probe(&with(&["CMD", "true"])));
        assert!(has_probe(&with(&["CMD-SHELL", "exit 0"])));
        assert!(!has_probe(&with(&["NONE"])));
        assert!(!has_probe(&with(&[])));
        assert!(!has_probe(&with(&["CMD"])));
        assert!(!has_probe(&with(&["HTTP", "x"])));
    }

    /// A store on a tempdir holding one created container with `check`.
    fn store_with(check: Option<HealthConfig>) -> (tempfile::TempDir, Engine, String) {
        let mut s = crate::testing::store();
        let id = "ab".repeat(32);
        s.add_container(&id, "web", serde_json::json!({ "health": check }));
        let crate::testing::TestStore { tmp, engine, .. } = s;
        (tmp, engine, id)
    }

    fn stored(e: &Engine, id: &str) -> ContainerRecord {
        e.db.container(id).unwrap().unwrap()
    }

    #[test]
    fn reset_and_stop_keep_the_log_in_the_record() {
        let (_tmp, mut e, id) = store_with(Some(check(3, 0)));
        assert_eq!(Health::of(&stored(&e, &id)).map(|h| h.status), None);
        e.reset_health(&id).unwrap();
        assert_eq!(
            stored(&e, &id).health.as_deref(),
            Some(r#"{"Status":"starting","FailingStreak":0,"Log":[]}"#)
        );
        let h = apply_probe(None, result(1, 1), &check(1, 0), None);
        let json = serde_json::to_string(&h).unwrap();
        e.db.set_container_health(&id, Some(&json)).unwrap();
        e.stop_health(&id).unwrap();
        let after_stop = Health::of(&stored(&e, &id)).unwrap();
        assert_eq!(after_stop.status, UNHEALTHY);
        assert_eq!(after_stop.failing_streak, 1);
        e.reset_health(&id).unwrap();
        let r = stored(&e, &id);
        assert_eq!(Health::of(&r).map(|h| h.status).as_deref(), Some(STARTING));
        let restarted = Health::of(&r).unwrap();
        assert_eq!(restarted.failing_streak, 0);
        assert_eq!(restarted.log, h.log);
        // A probe of a container that is not running records nothing.
        e.containers().run_health_probe("web").unwrap();
        assert_eq!(stored(&e, &id), r);
    }

    #[test]
    fn containers_without_a_check_have_no_health() {
        let (_tmp, mut e, id) = store_with(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
        e.db.set_container_health(
            &id,
            Some(r#"{"Status":"healthy","FailingStreak":0,"Log":[]}"#),
        )
        .unwrap();
        e.reset_health(&id).unwrap();
        assert_eq!(stored(&e, &id).health, None);
        e.stop_health(&id).unwrap();
        assert_eq!(stored(&e, &id).health, None);
        let (_tmp, mut e, id) = store_with(None);
        e.reset_health(&id).unwrap();
        assert_eq!(stored(&e, &id).health, None);
        assert!(matches!(
            e.reset_health("nosuch"),
            Err(EngineError::Io { .. } | EngineError::NoSuchContainer(_))
        ));
    }

    #[test]
    fn zombie_init_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i64;
        assert!(init_alive(std::process::id() as i64));
        // Exited but not reaped: a zombie until wait().
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while init_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!init_alive(pid));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert!(stat.contains(") Z "), "still there, as a zombie: {stat}");
        child.wait().unwrap();
        assert!(!init_alive(pid));
        assert!(init_alive(0), "no recorded init: nothing to check");
    }
}
