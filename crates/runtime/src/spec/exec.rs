//! The process `exec` starts in a running container, built from the container's own
//! process (its config.json) and the request, with docker's rules (moby
//! `daemon/exec.go`, `daemon/exec_linux.go`): the container's environment with the
//! `-e` entries overriding, its working directory, user, capabilities, rlimits and
//! no-new-privileges unless the request says otherwise. Pure: the engine resolves `-u`
//! in the container's /etc/passwd and /etc/group first.

use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, LinuxCapabilities, Process, User};

use super::{capability_set, ProcessUser, SpecError};

/// `-u`, resolved in the container's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub user: ProcessUser,
    /// The user's home directory from the container's /etc/passwd; None: no entry.
    pub home: Option<String>,
}

/// What `exec` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecInput {
    /// The command and its arguments (not empty).
    pub args: Vec<String>,
    /// `-e`/`--env-file` entries (`K=V`), in command-line order.
    pub env: Vec<String>,
    /// `-w`: absolute; None: the container's working directory.
    pub cwd: Option<String>,
    /// `-u`; None: the container's user.
    pub user: Option<ExecUser>,
    /// The `HOME` the container's own user got by default (its passwd entry's home, or
    /// `/`). A container environment whose `HOME` is this default follows the exec
    /// user instead, as docker's (where the runtime fills in `HOME` per process).
    pub container_home: String,
    /// `-t`.
    pub tty: bool,
    /// `--privileged`: the process gets [`ExecInput::privileged_capabilities`].
    pub privileged: bool,
    /// Every capability a privileged exec gets (docker: all of them; the engine passes
    /// those it holds itself, as for `run --privileged`).
    pub privileged_capabilities: Vec<String>,
}

fn key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// The environment of the exec'd process: the container's, then each override replacing
/// the variable of the same name in place or appended (docker's
/// `ReplaceOrAppendEnvValues`). `TERM=xterm` follows the exec's `-t`, not the
/// container's.
fn exec_env(container: &Process, input: &ExecInput) -> Vec<String> {
    let mut env: Vec<String> = container.env().clone().unwrap_or_default();
    let container_tty = container.terminal().unwrap_or(false);
    if container_tty && !input.tty {
        // `run -t` added it; docker's exec environment has it only with `exec -t`.
        env.retain(|e| e != "TERM=xterm");
    }
    if input.tty && !env.iter().any(|e| key(e) == "TERM") {
        let at = env
            .iter()
            .position(|e| key(e) == "HOSTNAME")
            .map_or(env.len(), |i| i + 1);
        env.insert(at, "TERM=xterm".to_string());
    }
    if let Some(user) = &input.user {
        let default_home = format!("HOME={}", input.container_home);
        if let Some(i) = env.iter().position(|e| *e == default_home) {
            let home = user
                .home
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or("/");
            env[i] = format!("HOME={home}");
        }
    }
    for e in input.env.iter().filter(|e| e.contains('=')) {
        let k = key(e);
        if k.is_empty() {
            continue;
        }
        match env.iter().position(|x| key(x) == k) {
            Some(i) => env[i] = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}

/// Effective and permitted follow the bounding set for root and are empty for other
/// users (the kernel clears them at execve anyway), as [`super::build_spec`].
fn capabilities_for(
    bounding: Capabilities,
    uid: u32,
    from: &LinuxCapabilities,
) -> LinuxCapabilities {
    let mut caps = from.clone();
    caps.set_bounding(Some(bounding.clone()));
    if uid == 0 {
        caps.set_effective(Some(bounding.clone()));
        caps.set_permitted(Some(bounding));
    } else {
        caps.set_effective(None);
        caps.set_permitted(None);
    }
    caps
}

/// The process to run for `input` in the container whose process is `container`.
pub fn exec_process(container: &Process, input: &ExecInput) -> Result<Process, SpecError> {
    if input.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let mut p = container.clone();
    p.set_args(Some(input.args.clone()));
    p.set_env(Some(exec_env(container, input)));
    if let Some(cwd) = &input.cwd {
        if !cwd.starts_with('/') {
            return Err(SpecError::RelativeWorkdir(cwd.clone()));
        }
        p.set_cwd(PathBuf::from(cwd));
    }
    if let Some(u) = &input.user {
        let mut user = User::default();
        user.set_uid(u.user.uid);
        user.set_gid(u.user.gid);
        user.set_umask(container.user().umask());
        if !u.user.additional_gids.is_empty() {
            user.set_additional_gids(Some(u.user.additional_gids.clone()));
        }
        p.set_user(user);
    }
    let uid = p.user().uid();
    let from = container.capabilities().clone().unwrap_or_else(|| {
        let mut none = LinuxCapabilities::default();
        none.set_bounding(None)
            .set_effective(None)
            .set_permitted(None)
            .set_inheritable(None)
            .set_ambient(None);
        none
    });
    let bounding = if input.privileged {
        capability_set(&input.privileged_capabilities)?
    } else {
        from.bounding().clone().unwrap_or_default()
    };
    // AppArmor profile and SELinux label stay the container's, even for `exec
    // --privileged` (docker: "privileged configuration of the container is inherited").
    p.set_capabilities(Some(capabilities_for(bounding, uid, &from)));
    p.set_terminal(Some(input.tty));
    p.set_console_size(None);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{build_spec, SpecInput};
    use oci_spec::runtime::Capability;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    /// The process of a container as `run` builds it.
    fn container(tty: bool, uid: u32, env: &[&str]) -> Process {
        let input = SpecInput {
            args: v(&["sleep", "1000"]),
            env: v(env),
            cwd: "/srv".into(),
            terminal: tty,
            user: ProcessUser {
                uid,
                gid: uid,
                additional_gids: vec![10],
            },
            ulimits: vec![coracle_model::parse_ulimit("nofile=100:200").unwrap()],
            no_new_privileges: true,
            ..SpecInput::default()
        };
        build_spec(&input).unwrap().process().clone().unwrap()
    }

    fn input(args: &[&str]) -> ExecInput {
        ExecInput {
            args: v(args),
            container_home: "/root".into(),
            ..ExecInput::default()
        }
    }

    fn caps(names: &[&str]) -> Capabilities {
        capability_set(&v(names)).unwrap()
    }

    #[test]
    fn inherits_the_container_process() {
        let c = container(
            false,
            0,
            &["PATH=/bin", "HOSTNAME=abc", "A=1", "HOME=/root"],
        );
        let p = exec_process(&c, &input(&["ps", "-o", "pid"])).unwrap();
        assert_eq!(p.args().as_deref(), Some(&v(&["ps", "-o", "pid"])[..]));
        assert_eq!(p.env(), c.env());
        assert_eq!(p.cwd(), &PathBuf::from("/srv"));
        assert_eq!(p.user(), c.user());
        assert_eq!(p.rlimits(), c.rlimits());
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.capabilities(), c.capabilities());
        assert_eq!(p.terminal(), Some(false));
    }

    #[test]
    fn env_overrides_replace_in_place_and_append() {
        let c = container(
            false,
            0,
            &["PATH=/bin", "HOSTNAME=abc", "A=1", "HOME=/root"],
        );
        let mut i = input(&["env"]);
        i.env = v(&["A=2", "B=3", "PATH=/usr/bin"]);
        let p = exec_process(&c, &i).unwrap();
        assert_eq!(
            p.env().clone().unwrap(),
            v(&["PATH=/usr/bin", "HOSTNAME=abc", "A=2", "HOME=/root", "B=3"])
        );
    }

    #[test]
    fn term_follows_the_exec_tty() {
        let env = ["PATH=/bin", "HOSTNAME=abc", "TERM=xterm", "HOME=/root"];
        let c = container(true, 0, &env);
        let p = exec_process(&c, &input(&["env"])).unwrap();
        assert!(!p.env().clone().unwrap().contains(&"TERM=xterm".to_string()));
        let mut i = input(&["sh"]);
        i.tty = true;
        let c = container(false, 0, &["PATH=/bin", "HOSTNAME=abc", "HOME=/root"]);
        let p = exec_process(&c, &i).unwrap();
        assert_eq!(
            p.env().clone().unwrap(),
            v(&["PATH=/bin", "HOSTNAME=abc", "TERM=xterm", "HOME=/root"])
        );
        assert_eq!(p.terminal(), Some(true));
        // A TERM the user chose stays.
        let c = container(false, 0, &["PATH=/bin", "TERM=vt100"]);
        let p = exec_process(&c, &i).unwrap();
        assert_eq!(p.env().clone().unwrap(), v(&["PATH=/bin", "TERM=vt100"]));
    }

    #[test]
    fn user_changes_uid_groups_home_and_capabilities() {
        let c = container(false, 0, &["PATH=/bin", "HOME=/root"]);
        let mut i = input(&["id"]);
        i.user = Some(ExecUser {
            user: ProcessUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![50],
            },
            home: Some("/home/app".into()),
        });
        let p = exec_process(&c, &i).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[50u32][..]));
        assert_eq!(
            p.env().clone().unwrap(),
            v(&["PATH=/bin", "HOME=/home/app"])
        );
        let pc = p.capabilities().clone().unwrap();
        assert_eq!(pc.bounding(), c.capabilities().clone().unwrap().bounding());
        assert_eq!((pc.effective(), pc.permitted()), (&None, &None));

        // A HOME the image or `run -e` set is kept.
        let c = container(false, 0, &["PATH=/bin", "HOME=/data"]);
        let p = exec_process(&c, &i).unwrap();
        assert_eq!(p.env().clone().unwrap(), v(&["PATH=/bin", "HOME=/data"]));

        // root in a container of another user gets the bounding set.
        let c = container(false, 1000, &["PATH=/bin", "HOME=/home/app"]);
        let mut i = input(&["id"]);
        i.container_home = "/home/app".into();
        i.user = Some(ExecUser {
            user: ProcessUser::default(),
            home: Some("/root".into()),
        });
        let p = exec_process(&c, &i).unwrap();
        let pc = p.capabilities().clone().unwrap();
        assert_eq!(pc.effective(), pc.bounding());
        assert_eq!(pc.permitted(), pc.bounding());
        assert_eq!(p.env().clone().unwrap(), v(&["PATH=/bin", "HOME=/root"]));
    }

    #[test]
    fn privileged_gets_every_capability_given() {
        let c = container(false, 0, &["PATH=/bin"]);
        let mut i = input(&["sh"]);
        i.privileged = true;
        i.privileged_capabilities = v(&["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_CHOWN"]);
        let p = exec_process(&c, &i).unwrap();
        let pc = p.capabilities().clone().unwrap();
        let want = caps(&["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_CHOWN"]);
        assert_eq!(pc.bounding().as_ref(), Some(&want));
        assert_eq!(pc.effective().as_ref(), Some(&want));
        assert!(pc
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        // Security settings other than capabilities stay the container's.
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.rlimits(), c.rlimits());
        // AppArmor too, as docker keeps it for `exec --privileged`.
        let mut confined = c.clone();
        confined.set_apparmor_profile(Some("coracle-default".into()));
        let p = exec_process(&confined, &i).unwrap();
        assert_eq!(p.apparmor_profile().as_deref(), Some("coracle-default"));
    }

    #[test]
    fn workdir_and_command_checked() {
        let c = container(false, 0, &["PATH=/bin"]);
        let mut i = input(&["pwd"]);
        i.cwd = Some("/tmp".into());
        assert_eq!(exec_process(&c, &i).unwrap().cwd(), &PathBuf::from("/tmp"));
        i.cwd = Some("tmp".into());
        assert!(matches!(
            exec_process(&c, &i),
            Err(SpecError::RelativeWorkdir(_))
        ));
        assert!(matches!(
            exec_process(&c, &input(&[])),
            Err(SpecError::NoCommand)
        ));
        let mut i = input(&["sh"]);
        i.privileged = true;
        i.privileged_capabilities = v(&["CAP_NOPE"]);
        assert!(matches!(
            exec_process(&c, &i),
            Err(SpecError::UnknownCapability(_))
        ));
    }
}
