//! `--volumes-from`: another container's volumes and bind mounts, mounted at the same
//! places (docker's `registerMountPoints`, step 2).

use crate::container_config::{MountPoint, StoredConfig};
use crate::{Engine, EngineError};
use coracle_model::{clean_path, ContainerSpec, MountRequest, Propagation};

/// The mounts `--volumes-from` adds to a new container.
pub(crate) struct SharedMounts {
    /// To resolve, after the container's own.
    pub requests: Vec<MountRequest>,
    /// As `inspect` shows them (docker copies the other container's mount point, mode
    /// left empty).
    pub points: Vec<MountPoint>,
}

impl Engine {
    /// Every volume and bind mount of each container named (tmpfs mounts are the
    /// other container's own and are not shared), read-only where it is so there or
    /// where `:ro` says so. A later container's mount at a place replaces an earlier
    /// one's, and the new container's own `-v`/`--mount` there win over both; a
    /// volume is shared as it is, never filled from the image.
    pub(crate) fn volumes_from(
        &mut self,
        opts: &ContainerSpec,
    ) -> Result<SharedMounts, EngineError> {
        let mut points: Vec<MountPoint> = Vec::new();
        for vf in &opts.volumes_from {
            let c = self.find_container(&vf.container)?;
            let stored = StoredConfig::parse(&c.config);
            for m in stored.mounts {
                if m.kind != "volume" && m.kind != "bind" {
                    continue;
                }
                let point = MountPoint {
                    rw: m.rw && !vf.read_only,
                    mode: String::new(),
                    ..m
                };
                points.retain(|p| p.destination != point.destination);
                points.push(point);
            }
        }
        let clean = |t: &str| clean_path(std::path::Path::new(t));
        let own: Vec<_> = opts.mounts.iter().map(|m| clean(m.target())).collect();
        points.retain(|p| !own.contains(&clean(&p.destination)));
        let volumes = self.volume_store()?;
        let mut requests = Vec::with_capacity(points.len());
        for p in &points {
            requests.push(if p.kind == "volume" {
                // Shared as it is: a volume removed since is an error, not a new one.
                volumes.get(&p.name)?;
                MountRequest::Named {
                    name: p.name.clone(),
                    target: p.destination.clone(),
                    read_only: !p.rw,
                    no_copy: true,
                }
            } else {
                MountRequest::Bind {
                    source: p.source.clone().into(),
                    target: p.destination.clone(),
                    read_only: !p.rw,
                    propagation: Propagation::parse(&p.propagation),
                    create_source: false,
                    recursive: true,
                    relabel: None,
                }
            });
        }
        Ok(SharedMounts { requests, points })
    }
}
