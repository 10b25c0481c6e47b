//! Fixtures of the engine's unit tests: a store on a tempdir opened with a fake OCI
//! runtime and a recording firewall driver, so orchestration (network planning,
//! firewall sync, reconcile, teardown) runs without root or a kernel to change.

use crate::{Engine, EngineConfig, RunDir};
use coracle_net::firewall::{FirewallDriver, FirewallState};
use coracle_net::NetError;
use coracle_runtime::runtime::{Op, ProcessIo, Runtime, RuntimeError, RuntimeState, Status};
use coracle_state::ContainerRecord;
use oci_spec::runtime::{LinuxResources, Process};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the fake runtime was asked, and whether its deletes fail.
#[derive(Default)]
pub(crate) struct RuntimeLog {
    /// `(runtime name, op, container id)`, in order.
    pub calls: Mutex<Vec<(String, Op, String)>>,
    pub fail_delete: Mutex<bool>,
    /// The state directories the factory was given.
    pub state_roots: Mutex<Vec<PathBuf>>,
}

impl RuntimeLog {
    pub(crate) fn deletes(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, op, _)| matches!(op, Op::Delete))
            .map(|(_, _, id)| id.clone())
            .collect()
    }
}

/// A runtime that runs nothing: every call is logged; only `delete` (which may be set
/// to fail) and `state` (always stopped) answer.
struct FakeRuntime {
    name: String,
    log: Arc<RuntimeLog>,
}

impl FakeRuntime {
    fn call(&self, op: Op, id: &str) -> Result<(), RuntimeError> {
        self.log
            .calls
            .lock()
            .unwrap()
            .push((self.name.clone(), op, id.to_string()));
        Err(RuntimeError::Failed {
            runtime: self.name.clone(),
            op,
            id: id.to_string(),
            message: "the fake runtime runs nothing".into(),
        })
    }
}

impl Runtime for FakeRuntime {
    fn name(&self) -> &str {
        &self.name
    }
    fn create(&self, id: &str, _: &Path, _: ProcessIo) -> Result<u32, RuntimeError> {
        self.call(Op::Create, id).map(|()| 0)
    }
    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Start, id)
    }
    fn kill(&self, id: &str, _: i32) -> Result<(), RuntimeError> {
        self.call(Op::Kill, id)
    }
    fn delete(&self, id: &str, _: bool) -> Result<(), RuntimeError> {
        let refused = self.call(Op::Delete, id);
        if *self.log.fail_delete.lock().unwrap() {
            refused
        } else {
            Ok(())
        }
    }
    fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError> {
        let _ = self.call(Op::State, id);
        Ok(RuntimeState {
            id: id.to_string(),
            status: Status::Stopped,
            pid: None,
            bundle: PathBuf::new(),
        })
    }
    fn exec(&self, id: &str, _: &Process, _: ProcessIo) -> Result<u32, RuntimeError> {
        self.call(Op::Exec, id).map(|()| 0)
    }
    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Pause, id)
    }
    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Resume, id)
    }
    fn update(&self, id: &str, _: &LinuxResources) -> Result<(), RuntimeError> {
        self.call(Op::Update, id)
    }
}

/// Keeps every state it is asked to apply.
struct RecordingFirewall {
    applied: Arc<Mutex<Vec<(String, FirewallState)>>>,
    table: String,
}

impl FirewallDriver for RecordingFirewall {
    fn apply(&self, state: &FirewallState) -> Result<(), NetError> {
        self.applied
            .lock()
            .unwrap()
            .push((self.table.clone(), state.clone()));
        Ok(())
    }
}

/// A store of its own (and run directory, and `network.toml`) with the fakes.
pub(crate) struct TestStore {
    pub tmp: tempfile::TempDir,
    pub engine: Engine,
    pub runtime: Arc<RuntimeLog>,
    /// `(table, state)` per apply.
    pub firewall: Arc<Mutex<Vec<(String, FirewallState)>>>,
}

/// The address pool of the test stores' networks: private, and unlikely to be routed
/// on a test host (a subnet that is gets skipped anyway).
pub(crate) const TEST_POOL: &str = "10.213.0.0/16";

pub(crate) fn store() -> TestStore {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = Arc::new(RuntimeLog::default());
    let firewall = Arc::new(Mutex::new(Vec::new()));
    let network = tmp.path().join("network.toml");
    std::fs::write(
        &network,
        format!("default_address_pools = [{{ base = \"{TEST_POOL}\", size = 24 }}]\n"),
    )
    .unwrap();
    let (rt_log, fw_log) = (runtime.clone(), firewall.clone());
    let config = EngineConfig {
        run_dir: RunDir::new(tmp.path().join("run")),
        runtimes: Arc::new(move |name: &str, state_root: &Path| {
            rt_log.state_roots.lock().unwrap().push(state_root.into());
            let runtime: Box<dyn Runtime> = Box::new(FakeRuntime {
                name: name.to_string(),
                log: rt_log.clone(),
            });
            Ok(runtime)
        }),
        firewall: Arc::new(move |table: &str| -> Box<dyn FirewallDriver> {
            Box::new(RecordingFirewall {
                applied: fw_log.clone(),
                table: table.to_string(),
            })
        }),
        // Never read by these tests: a registry operation would fail on it.
        registries: tmp.path().join("registries.toml"),
        network,
        ..EngineConfig::new(tmp.path().join("store"))
    };
    std::fs::write(&config.registries, "not = [toml").unwrap();
    let engine = Engine::with_config(config).unwrap();
    TestStore {
        tmp,
        engine,
        runtime,
        firewall,
    }
}

impl TestStore {
    /// A container record (state created) on a recorded image, and its
    /// `container.json`: `config` is merged over a minimal one (root filesystem a copy,
    /// nothing to unmount).
    pub(crate) fn add_container(&mut self, id: &str, name: &str, config: serde_json::Value) {
        let e = &mut self.engine;
        let image = coracle_core::Digest::sha256_of(b"image");
        if e.db.image(&image).unwrap().is_none() {
            let layer = coracle_core::Digest::sha256_of(b"layer");
            e.db.put_image(&coracle_state::NewImage {
                id: image.clone(),
                manifest_digest: coracle_core::Digest::sha256_of(b"manifest"),
                manifest: vec![],
                manifest_type: "application/vnd.oci.image.manifest.v1+json".into(),
                config: vec![],
                created: None,
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
                layers: vec![coracle_state::ImageLayer {
                    chain_id: layer.clone(),
                    diff_id: layer.clone(),
                    blob_digest: layer,
                    blob_size: 1,
                    media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                    size: 1,
                }],
            })
            .unwrap();
        }
        e.db.insert_container(&ContainerRecord::new_created(
            id.into(),
            name.into(),
            image,
            "box".into(),
            0,
            "{}".into(),
        ))
        .unwrap();
        let dir = e.containers_dir().join(id);
        let mut cfg = serde_json::json!({
            "id": id,
            "name": name,
            "rm": false,
            "tty": false,
            "interactive": false,
            "runtime": null,
            "rootfs": {"target": dir.join("merged"), "kind": "Copy"},
        });
        if let (Some(base), serde_json::Value::Object(extra)) = (cfg.as_object_mut(), config) {
            base.extend(extra);
        }
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("container.json"), cfg.to_string()).unwrap();
    }

    /// Marks container `id` running under monitor `monitor_pid` (e.g. a dead one).
    pub(crate) fn set_running(&mut self, id: &str, monitor_pid: i64) {
        let db = &mut self.engine.db;
        assert!(db.claim_container_monitor(id, monitor_pid).unwrap());
        db.set_container_running(id, monitor_pid, monitor_pid + 1, "2024-01-01T00:00:00Z")
            .unwrap();
    }

    pub(crate) fn record(&self, id: &str) -> Option<ContainerRecord> {
        self.engine.db.container(id).unwrap()
    }

    pub(crate) fn applied(&self) -> Vec<FirewallState> {
        let applied = self.firewall.lock().unwrap();
        applied.iter().map(|(_, s)| s.clone()).collect()
    }
}

/// A pid no process can have (above the kernel's largest `pid_max`): a monitor that
/// is gone.
pub(crate) const DEAD_PID: i64 = (1 << 22) + 1;
