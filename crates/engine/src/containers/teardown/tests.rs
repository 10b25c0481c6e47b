//! Reconcile and teardown with a fake runtime: what is left of a container whose
//! monitor died, and runtime deletes that fail.

use crate::testing::{store, DEAD_PID};
use crate::EngineError;
use serde_json::json;

fn id(c: char) -> String {
    c.to_string().repeat(64)
}

#[test]
fn a_record_without_a_monitor_is_left_as_it_is() {
    let mut s = store();
    let id = id('a');
    s.add_container(&id, "web", json!({}));
    let rec = s.record(&id).unwrap();
    assert_eq!(s.engine.reconcile(&rec).unwrap(), rec);
    assert!(s.runtime.calls.lock().unwrap().is_empty());
}

#[test]
fn a_dead_monitors_container_is_torn_down_and_recorded_exited() {
    let mut s = store();
    let id = id('b');
    s.add_container(&id, "web", json!({}));
    s.set_running(&id, DEAD_PID);
    let dir = s.engine.containers_dir().join(&id);
    std::fs::write(dir.join("exit"), "3").unwrap();
    let socket = s.engine.run_dir().attach_socket(&id);
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::write(&socket, "").unwrap();

    let rec = s.record(&id).unwrap();
    let after = s.engine.reconcile(&rec).unwrap();
    assert!(!after.is_active(), "{after:?}");
    assert_eq!(after.exit_code, Some(3));
    assert_eq!(after.monitor_pid, None);
    assert_eq!(s.record(&id).unwrap(), after);
    // Deleted from the runtime its config names (the built-in one), whose state is in
    // this engine's run directory.
    assert_eq!(s.runtime.deletes(), std::slice::from_ref(&id));
    assert_eq!(
        s.runtime.calls.lock().unwrap()[0].0,
        coracle_runtime::runtime::BUILTIN
    );
    assert_eq!(
        *s.runtime.state_roots.lock().unwrap(),
        [s.tmp.path().join("run").join("runtime")]
    );
    assert!(!socket.exists());
    assert!(!s.engine.pending_dir().join(&id).exists());
}

#[test]
fn an_exit_that_was_never_written_reads_255() {
    let mut s = store();
    let id = id('c');
    s.add_container(&id, "web", json!({}));
    s.set_running(&id, DEAD_PID);
    let rec = s.record(&id).unwrap();
    assert_eq!(s.engine.reconcile(&rec).unwrap().exit_code, Some(255));
}

#[test]
fn a_dead_monitors_rm_container_is_removed() {
    let mut s = store();
    let id = id('d');
    s.add_container(&id, "web", json!({"rm": true}));
    s.set_running(&id, DEAD_PID);
    let rec = s.record(&id).unwrap();
    match s.engine.reconcile(&rec) {
        Err(EngineError::NoSuchContainer(gone)) => assert_eq!(gone, id),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.record(&id), None);
    assert!(!s.engine.containers_dir().join(&id).exists());
    assert!(s.engine.container_records().unwrap().is_empty());
}

#[test]
fn a_failed_runtime_delete_is_remembered_and_retried_by_later_commands() {
    let mut s = store();
    let id = id('e');
    s.add_container(&id, "web", json!({"runtime": "crun"}));
    s.set_running(&id, DEAD_PID);
    *s.runtime.fail_delete.lock().unwrap() = true;
    let rec = s.record(&id).unwrap();
    let after = s.engine.reconcile(&rec).unwrap();
    // The record moves on regardless; the marker names the runtime to retry with.
    assert!(!after.is_active());
    let marker = s.engine.pending_dir().join(&id);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "crun");

    // Still failing: kept for the next command.
    s.engine.retry_teardowns();
    assert!(marker.exists());
    assert_eq!(s.runtime.deletes().len(), 2);

    *s.runtime.fail_delete.lock().unwrap() = false;
    s.engine.container_records().unwrap();
    assert!(!marker.exists());
    let calls = s.runtime.calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|(name, _, c)| name == "crun" && *c == id));
}

#[test]
fn a_teardown_is_not_retried_while_a_monitor_holds_the_container() {
    let mut s = store();
    let id = id('f');
    s.add_container(&id, "web", json!({}));
    s.set_running(&id, DEAD_PID);
    *s.runtime.fail_delete.lock().unwrap() = true;
    let rec = s.record(&id).unwrap();
    s.engine.reconcile(&rec).unwrap();
    *s.runtime.fail_delete.lock().unwrap() = false;
    // A monitor starting the container holds its directory's lock, and deletes what
    // the runtime has left itself.
    let dir = s.engine.containers_dir().join(&id);
    let lock = crate::containers::lock_dir(&dir).unwrap();
    s.engine.retry_teardowns();
    assert_eq!(s.runtime.deletes().len(), 1);
    drop(lock);
    s.engine.retry_teardowns();
    assert_eq!(s.runtime.deletes().len(), 2);
    assert!(!s.engine.pending_dir().join(&id).exists());
}

#[test]
fn removing_a_container_retries_its_teardown_first() {
    let mut s = store();
    let id = id('9');
    s.add_container(&id, "web", json!({}));
    s.set_running(&id, DEAD_PID);
    *s.runtime.fail_delete.lock().unwrap() = true;
    let rec = s.record(&id).unwrap();
    s.engine.reconcile(&rec).unwrap();
    *s.runtime.fail_delete.lock().unwrap() = false;
    let cfg = s.engine.container_config(&id).unwrap();
    s.engine.remove_stopped(&id, &cfg, true).unwrap();
    assert_eq!(s.runtime.deletes(), [id.clone(), id.clone()]);
    assert!(!s.engine.pending_dir().join(&id).exists());
    assert_eq!(s.record(&id), None);
}
