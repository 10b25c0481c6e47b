//! `search` (Issue 11 C.3): the registry's v1 search API with docker's columns,
//! truncation, `--limit`, `--filter` and `--format`. Docker Hub is unreachable here,
//! so a small loopback server stands in for its `/v1/search`; a real distribution
//! registry (which has no search API) gives a clear error.

use crate::common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

const RESULTS: &str = r#"{"num_results":3,"query":"box","results":[
 {"name":"busybox","description":"Busybox base image, with many common UNIX utilities in one small binary","star_count":3000,"is_official":true,"is_automated":true},
 {"name":"me/boxes","description":"two\nlines","star_count":7,"is_official":false,"is_automated":false},
 {"name":"you/box","description":"","star_count":12,"is_official":false,"is_automated":false}]}"#;

/// A loopback server answering every `GET /v1/search...` with [`RESULTS`]; the request
/// targets it saw.
fn search_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut reader = BufReader::new(sock.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let target = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            log.lock().unwrap().push(target.clone());
            let (status, body) = if target.starts_with("/v1/search?") {
                ("200 OK", RESULTS)
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(
                sock,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (host, seen)
}

#[test]
fn search_prints_dockers_columns_truncated() {
    let (host, seen) = search_server();
    let c = coracle();
    let out = c.run(["search", &format!("{host}/box")]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]);
    assert!(lines[1].starts_with("busybox "), "{}", out.stdout);
    assert!(
        lines[1].contains("Busybox base image, with many common UNIX ut… "),
        "{}",
        out.stdout
    );
    let tail: Vec<&str> = lines[1].split_whitespace().rev().take(2).collect();
    assert_eq!(tail, ["[OK]", "3000"], "{}", out.stdout);
    assert!(lines[2].contains("two lines"), "{}", out.stdout);
    assert_eq!(seen.lock().unwrap().as_slice(), ["/v1/search?q=box&n=25"]);

    let out = c.run(["search", "--no-trunc", &format!("{host}/box")]);
    assert!(out.stdout.contains("in one small binary"), "{}", out.stdout);
}

#[test]
fn limit_filters_and_format() {
    let (host, seen) = search_server();
    let c = coracle();
    let term = format!("{host}/team/box");
    let names = |args: &[&str]| {
        let mut all = vec!["search", "--format", "{{.Name}}"];
        all.extend_from_slice(args);
        all.push(&term);
        let out = c.run(&all);
        out.assert_success();
        out.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(names(&["--limit", "2"]), ["busybox", "me/boxes", "you/box"]);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        "/v1/search?q=team%2Fbox&n=2"
    );
    assert_eq!(names(&["--filter", "stars=10"]), ["busybox", "you/box"]);
    assert_eq!(
        names(&["-f", "stars=10", "-f", "is-official=false"]),
        ["you/box"]
    );
    assert_eq!(names(&["--filter", "is-official=true"]), ["busybox"]);
    // Deprecated: Docker Hub has no automated builds any more (dockerd's rule).
    assert!(names(&["--filter", "is-automated=true"]).is_empty());

    let out = c.run([
        "search",
        "--format",
        "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}",
        &term,
    ]);
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "busybox|3000|[OK]|",
        "is_automated is always reported false"
    );
    let out = c.run(["search", "--format", "json", "--limit", "1", &term]);
    out.assert_success();
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["Name"], "busybox");
    assert_eq!(first["StarCount"], "3000");
    assert_eq!(first["IsOfficial"], "true");

    for (args, want) in [
        (
            &["--limit", "101"][..],
            "limit 101 is outside the range of [1, 100]",
        ),
        (
            &["--limit", "-1"][..],
            "limit -1 is outside the range of [1, 100]",
        ),
        (&["--filter", "color=red"][..], "invalid filter 'color'"),
        (
            &["--filter", "stars=many"][..],
            "invalid filter 'stars=many'",
        ),
    ] {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        all.push(&term);
        let out = c.run(&all);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_registry_without_search_says_so() {
    let reg = Registry::start().expect("start registry");
    let c = coracle();
    let out = c.run(["search", &format!("{}/busybox", reg.host())]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{} does not support search", reg.host())),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}
