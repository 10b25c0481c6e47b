//! Docker's rules for the command line and the environment of a container.

use crate::{defaults, OptionsError};

/// The container's argv from the image's Entrypoint/Cmd and the `run` arguments,
/// exactly as docker combines them:
/// - command arguments replace the image's Cmd;
/// - `--entrypoint X` replaces the image's Entrypoint and drops the image's Cmd
///   (only the command arguments follow it);
/// - `--entrypoint ""` clears the Entrypoint (and also drops the image's Cmd);
/// - nothing left: docker's error "No command specified".
pub fn resolve_command(
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    entrypoint_override: Option<&str>,
    args: &[String],
) -> Result<Vec<String>, OptionsError> {
    let mut argv: Vec<String> = match entrypoint_override {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => image_entrypoint.map(<[String]>::to_vec).unwrap_or_default(),
    };
    if !args.is_empty() {
        argv.extend(args.iter().cloned());
    } else if entrypoint_override.is_none() {
        argv.extend(image_cmd.into_iter().flatten().cloned());
    }
    if argv.is_empty() {
        // docker's words (exit code 125).
        return Err(OptionsError::Invalid("No command specified".to_string()));
    }
    Ok(argv)
}

/// What the engine knows that the environment defaults depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvContext {
    /// The container's hostname (docker sets `HOSTNAME`).
    pub hostname: String,
    /// The home directory of the resolved user from the container's /etc/passwd;
    /// None: `/` (runc's fallback for a user with no passwd entry).
    pub home: Option<String>,
    /// `-t`: `TERM=xterm`.
    pub tty: bool,
}

fn key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// The container's environment, as docker builds it: `PATH` (default when the image
/// has none), `HOSTNAME`, `TERM=xterm` with `-t`, then the `run` overrides (`-e`,
/// `--env-file`, already in command-line order), then the image's variables not
/// overridden; `HOME` last when nobody set it. A name given twice keeps its first
/// position and its last value. An override without `=` (`-e K` with K unset in the
/// caller) is dropped.
pub fn merge_env(image_env: &[String], overrides: &[String], ctx: &EnvContext) -> Vec<String> {
    let mut out: Vec<String> = vec![
        format!("PATH={}", defaults::DEFAULT_PATH_ENV),
        format!("HOSTNAME={}", ctx.hostname),
    ];
    if ctx.tty {
        out.push("TERM=xterm".to_string());
    }
    let user_keys: Vec<&str> = overrides.iter().map(|e| key(e)).collect();
    let config_env = overrides
        .iter()
        .filter(|e| e.contains('='))
        .chain(image_env.iter().filter(|e| !user_keys.contains(&key(e))));
    for e in config_env {
        let k = key(e);
        if k.is_empty() {
            continue;
        }
        match out.iter().position(|x| key(x) == k) {
            Some(i) => out[i] = e.clone(),
            None => out.push(e.clone()),
        }
    }
    if !out.iter().any(|e| key(e) == "HOME") {
        out.push(format!(
            "HOME={}",
            ctx.home.as_deref().filter(|h| !h.is_empty()).unwrap_or("/")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_rules_match_docker() {
        let ep = v(&["/entry.sh"]);
        let cmd = v(&["nginx", "-g", "daemon off;"]);
        // image only
        assert_eq!(
            resolve_command(Some(&ep), Some(&cmd), None, &[]).unwrap(),
            v(&["/entry.sh", "nginx", "-g", "daemon off;"])
        );
        // args replace Cmd, keep Entrypoint
        assert_eq!(
            resolve_command(Some(&ep), Some(&cmd), None, &v(&["sh"])).unwrap(),
            v(&["/entry.sh", "sh"])
        );
        // no entrypoint: args are the command
        assert_eq!(
            resolve_command(None, Some(&v(&["/bin/sh"])), None, &v(&["echo", "hi"])).unwrap(),
            v(&["echo", "hi"])
        );
        assert_eq!(
            resolve_command(None, Some(&v(&["/bin/sh"])), None, &[]).unwrap(),
            v(&["/bin/sh"])
        );
        // --entrypoint drops the image Cmd
        assert_eq!(
            resolve_command(Some(&ep), Some(&cmd), Some("/bin/sh"), &[]).unwrap(),
            v(&["/bin/sh"])
        );
        assert_eq!(
            resolve_command(Some(&ep), Some(&cmd), Some("/bin/sh"), &v(&["-c", "x"])).unwrap(),
            v(&["/bin/sh", "-c", "x"])
        );
        // --entrypoint "" clears it
        assert_eq!(
            resolve_command(Some(&ep), Some(&cmd), Some(""), &v(&["echo", "hi"])).unwrap(),
            v(&["echo", "hi"])
        );
        let e = resolve_command(Some(&ep), Some(&cmd), Some(""), &[]).unwrap_err();
        assert_eq!(e.to_string(), "No command specified");
        assert_eq!(e.kind(), coracle_core::ErrorKind::InvalidArgument);
        assert!(resolve_command(None, None, None, &[]).is_err());
        assert!(resolve_command(Some(&[]), Some(&[]), None, &[]).is_err());
        // an entrypoint with spaces is one argv element (no shell splitting)
        assert_eq!(
            resolve_command(None, None, Some("/bin/my prog"), &[]).unwrap(),
            v(&["/bin/my prog"])
        );
    }

    #[test]
    fn env_merge_matches_docker() {
        let ctx = EnvContext {
            hostname: "abc123".into(),
            home: None,
            tty: false,
        };
        assert_eq!(
            merge_env(&[], &[], &ctx),
            v(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=abc123",
                "HOME=/"
            ])
        );
        let image = v(&["PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8", "A=image"]);
        let user = v(&["A=user", "B=1", "B=2"]);
        let ctx = EnvContext {
            hostname: "h".into(),
            home: Some("/home/app".into()),
            tty: true,
        };
        assert_eq!(
            merge_env(&image, &user, &ctx),
            v(&[
                "PATH=/opt/bin:/usr/bin",
                "HOSTNAME=h",
                "TERM=xterm",
                "A=user",
                "B=2",
                "LANG=C.UTF-8",
                "HOME=/home/app"
            ])
        );
        // the user may override PATH, HOSTNAME, TERM and HOME
        let user = v(&["HOSTNAME=x", "TERM=dumb", "HOME=/h", "PATH=/p"]);
        assert_eq!(
            merge_env(&[], &user, &ctx),
            v(&["PATH=/p", "HOSTNAME=x", "TERM=dumb", "HOME=/h"])
        );
        // an image HOME is kept
        let ctx = EnvContext {
            hostname: "h".into(),
            home: None,
            tty: false,
        };
        assert_eq!(
            merge_env(&v(&["HOME=/srv"]), &[], &ctx).last().unwrap(),
            "HOME=/srv"
        );
    }
}
