//! `system check --repair`: rebuilds a damaged or missing state database from the
//! store's files and says what came back and what did not (podman's `system check
//! --repair` is the model; docker has no such command). Exits 0 when the store is
//! usable afterwards, 1 otherwise.

use crate::Context;
use coracle_engine::{familiar_key, RecordSource, RepairReport};

pub fn exec(ctx: &Context) -> i32 {
    let report = match coracle_engine::repair_store(ctx.root.clone()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: repair: {e}");
            return 1;
        }
    };
    let db = report.database.display();
    let Some(why) = &report.damage else {
        println!("state database {db}: ok; nothing to repair");
        return 0;
    };
    println!("state database {db}: damaged: {why}");
    if !report.kept.is_empty() {
        let names: Vec<String> = report
            .kept
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .collect();
        println!(
            "kept the damaged files in {}: {}",
            ctx.root.display(),
            names.join(", ")
        );
    }
    println!("rebuilt {db} from the store's files:");
    print_recovered(&report);
    if !report.lost.is_empty() {
        println!("not recovered ({}):", report.lost.len());
        for l in &report.lost {
            println!("  {}: {}", l.what, l.why);
        }
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    // Usable: the new database passes the same check every command makes.
    match coracle_engine::StorePaths::new(ctx.root.clone()).check_database() {
        None => 0,
        Some(why) => {
            eprintln!("Error: the rebuilt state database {db} is not usable: {why}");
            1
        }
    }
}

fn print_recovered(report: &RepairReport) {
    let images: Vec<String> = report
        .images
        .iter()
        .map(|i| {
            let short = &i.id.hex()[..12];
            match i.tags.is_empty() {
                true => format!("{short} (untagged)"),
                false => {
                    let tags: Vec<String> = i.tags.iter().map(|t| familiar_key(t)).collect();
                    format!("{short} ({})", tags.join(", "))
                }
            }
        })
        .collect();
    println!("  images: {} recovered{}", images.len(), list(&images));
    let containers: Vec<String> = report
        .containers
        .iter()
        .map(|c| {
            let mut s = format!("{} ({}", c.name, c.state);
            if let Some(old) = &c.renamed_from {
                s.push_str(&format!(", renamed: {old} was taken"));
            }
            if c.source == RecordSource::Inferred {
                s.push_str(", from its files only");
            }
            s + ")"
        })
        .collect();
    println!(
        "  containers: {} recovered{}",
        containers.len(),
        list(&containers)
    );
    println!(
        "  networks: {} recovered{}",
        report.networks.len(),
        list(&report.networks)
    );
    println!(
        "  volumes: {} kept (they need no database record){}",
        report.volumes.len(),
        list(&report.volumes)
    );
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(": {}", items.join(", "))
    }
}
