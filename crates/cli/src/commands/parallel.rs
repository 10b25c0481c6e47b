//! docker's `parallelOperation`: `stop`, `kill`, `rm`, `pause` and `unpause` of
//! several containers act on all of them at once (a `stop -t 2` of 50 containers
//! takes 2 s, not 100), print each name or error in argument order, and exit 1 if
//! any failed.

use crate::Context;
use coracle_engine::{Engine, EngineError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// docker's CLI runs at most 50 operations at once; each worker here holds an
/// engine (a database connection) and waits on containers, it does not compute.
const MAX_PARALLEL: usize = 50;

/// Runs `op` on every container, `MAX_PARALLEL` at a time, each worker with its
/// own engine; prints results in argument order as they become known.
pub fn for_each_container<F>(ctx: &Context, containers: &[String], op: F) -> anyhow::Result<i32>
where
    F: Fn(&mut Engine, &str) -> Result<(), EngineError> + Sync,
{
    // Opened once up front so a store that cannot be opened fails the command as a
    // whole (as before), not once per container.
    let first = ctx.engine()?;
    let workers = containers.len().clamp(1, MAX_PARALLEL);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Result<(), String>)>();
    let mut failed = false;
    std::thread::scope(|s| {
        let mut first = Some(first);
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, op) = (&next, &op);
            let engine = first.take();
            s.spawn(move || {
                let mut engine = match engine.map_or_else(|| ctx.engine(), Ok) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        report_open_failure(next, containers.len(), &tx, &e);
                        None
                    }
                };
                while let Some(engine) = engine.as_mut() {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = containers.get(i) else { break };
                    let r = op(engine, c).map_err(|e| e.to_string());
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        failed = print_in_order(containers, rx);
    });
    Ok(if failed { 1 } else { 0 })
}

/// A worker whose engine did not open fails the containers it would have taken.
fn report_open_failure(
    next: &AtomicUsize,
    len: usize,
    tx: &mpsc::Sender<(usize, Result<(), String>)>,
    e: &anyhow::Error,
) {
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= len || tx.send((i, Err(format!("{e:#}")))).is_err() {
            return;
        }
    }
}

/// Prints each result once all before it are printed; true if any failed.
fn print_in_order(containers: &[String], rx: mpsc::Receiver<(usize, Result<(), String>)>) -> bool {
    let mut pending: Vec<Option<Result<(), String>>> = vec![None; containers.len()];
    let mut printed = 0;
    let mut failed = false;
    for (i, r) in rx {
        pending[i] = Some(r);
        while let Some(Some(r)) = pending.get_mut(printed).map(Option::take) {
            match r {
                Ok(()) => println!("{}", containers[printed]),
                Err(e) => {
                    eprintln!("Error: {e}");
                    failed = true;
                }
            }
            printed += 1;
        }
    }
    failed
}
