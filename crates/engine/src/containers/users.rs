//! `-u name|uid[:group|gid]` resolved against the container's own /etc/passwd and
//! /etc/group, as runc/docker do: names must exist there, numbers need not.

use crate::EngineError;
use coracle_model::{IdRef, UserSpec};
use coracle_runtime::spec::ProcessUser;

pub struct ResolvedUser {
    pub user: ProcessUser,
    /// From passwd; None when the user has no entry (the process then gets `HOME=/`).
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
        })
    })
}

/// `spec` None means the image's default: root.
pub fn resolve_user(
    spec: Option<&UserSpec>,
    group_add: &[IdRef],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, EngineError> {
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");
    let root = UserSpec {
        user: IdRef::Id(0),
        group: None,
    };
    let spec = spec.unwrap_or(&root);
    let entry =
        match &spec.user {
            IdRef::Name(n) => Some(passwd_entries(passwd).find(|e| e.name == n).ok_or_else(
                || {
                    EngineError::InvalidArgument(format!(
                        "unable to find user {n}: no matching entries in passwd file"
                    ))
                },
            )?),
            IdRef::Id(id) => passwd_entries(passwd).find(|e| e.uid == *id),
        };
    let uid = match &spec.user {
        IdRef::Id(id) => *id,
        IdRef::Name(_) => entry.as_ref().map(|e| e.uid).unwrap_or(0),
    };
    let find_group = |g: &IdRef| -> Result<u32, EngineError> {
        match g {
            IdRef::Id(id) => Ok(*id),
            IdRef::Name(n) => group_entries(group)
                .find(|e| e.name == n)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "unable to find group {n}: no matching entries in group file"
                    ))
                }),
        }
    };
    let gid = match &spec.group {
        Some(g) => find_group(g)?,
        None => entry.as_ref().map(|e| e.gid).unwrap_or(0),
    };
    // Supplementary groups as docker sets them (moby's getUser): the primary gid, the
    // user's memberships in /etc/group (only when no group was forced, as runc), then
    // --group-add.
    let mut additional = vec![gid];
    if spec.group.is_none() {
        if let Some(e) = &entry {
            for g in group_entries(group) {
                if g.members.contains(&e.name) && !additional.contains(&g.gid) {
                    additional.push(g.gid);
                }
            }
        }
    }
    for g in group_add {
        let id = find_group(g)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ResolvedUser {
        user: ProcessUser {
            uid,
            gid,
            additional_gids: additional,
        },
        home: entry.map(|e| e.home.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app\nstaff:x:50:app,other\n";

    fn spec(s: &str) -> UserSpec {
        coracle_model::parse_user(s).unwrap()
    }

    #[test]
    fn names_numbers_and_groups() {
        let r = resolve_user(Some(&spec("app")), &[], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((r.user.uid, r.user.gid), (1000, 1000));
        assert_eq!(r.user.additional_gids, vec![1000, 10, 50]);
        assert_eq!(r.home.as_deref(), Some("/home/app"));

        let r = resolve_user(Some(&spec("1234:5678")), &[], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((r.user.uid, r.user.gid, r.home), (1234, 5678, None));

        let r = resolve_user(
            Some(&spec("nobody:wheel")),
            &[IdRef::Id(7)],
            Some(PASSWD),
            Some(GROUP),
        )
        .unwrap();
        assert_eq!((r.user.uid, r.user.gid), (65534, 10));
        assert_eq!(r.user.additional_gids, vec![10, 7]);

        let r = resolve_user(None, &[], Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (r.user.uid, r.user.gid, r.home.as_deref()),
            (0, 0, Some("/root"))
        );

        assert!(resolve_user(Some(&spec("ghost")), &[], Some(PASSWD), Some(GROUP)).is_err());
        assert!(resolve_user(Some(&spec("app:ghosts")), &[], Some(PASSWD), Some(GROUP)).is_err());
        // No passwd file at all: numeric ids still work.
        assert_eq!(
            resolve_user(Some(&spec("5")), &[], None, None)
                .unwrap()
                .user
                .uid,
            5
        );
    }
}
