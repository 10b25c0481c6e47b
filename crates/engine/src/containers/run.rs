//! Creating a container for `run`: the image (pulled per `--pull`), a record with a
//! unique name, an overlay root filesystem, /etc files, volumes, the resolved user and
//! working directory, and the OCI spec as the bundle's config.json. The monitor
//! (`coracle __monitor`) then runs it and tears it down.
//!
//! Everything created here is undone if a later step fails: no record, mount or
//! directory outlives a failed `run`.

use crate::containers::users::resolve_user;
use crate::images::pull::{PullOptions, PullProgress};
use crate::names::{generate_name, new_container_id, valid_name};
use crate::networks::plan::NetworkPlan;
use crate::request::RunRequest;
use crate::stored::ContainerRuntimeConfig;
use crate::{Containers, Engine, EngineError};
use coracle_core::Platform;
use coracle_image::ImageConfig;
use coracle_model::{
    ContainerSpec, EnvContext, HealthConfig, HostFacts, ImageDefaults, MountRequest, NamespaceMode,
    PullPolicy, ResolvedContainer, SeccompOption,
};
use coracle_rootfs::snapshot::{self, RootfsMount};
use coracle_rootfs::{etc_files, VolumeStore};
use coracle_runtime::spec::{self, ResolvedMount, SeccompChoice, SpecInput};
use coracle_state::ContainerRecord;
use std::path::{Path, PathBuf};

pub struct PreparedContainer {
    pub id: String,
    pub name: String,
    pub dir: PathBuf,
}

/// Undoes a half-made container unless disarmed.
struct CreationGuard<'a> {
    engine: &'a mut Engine,
    id: String,
    dir: PathBuf,
    mounted: Option<RootfsMount>,
    armed: bool,
}

impl Drop for CreationGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(m) = &self.mounted {
            let _ = snapshot::unmount(m);
        }
        let _ = coracle_rootfs::remove_tree(&self.dir);
        let _ = self.engine.db.delete_container(&self.id);
    }
}

impl Engine {
    /// A `create` that failed on a full store removes its directory (freeing space)
    /// but may find no room for the database to forget the record: a Created record
    /// without its directory (made before the record, locked while it is created).
    /// Such a half-made container is dropped as soon as the database has room, so
    /// `ps` never lists it and its name is free again.
    /// Runs on every command: one query of ids and one directory listing, not a
    /// record read and a stat per container (`ps -a` with 1000 Created containers).
    pub(crate) fn drop_unmade_containers(&mut self) {
        let Ok(created) = self
            .db
            .container_ids_in_state(coracle_state::ContainerState::Created)
        else {
            return;
        };
        if created.is_empty() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.containers_dir()) else {
            return;
        };
        let dirs: std::collections::HashSet<std::ffi::OsString> =
            entries.flatten().map(|e| e.file_name()).collect();
        for id in created {
            if !dirs.contains(std::ffi::OsStr::new(&id)) {
                tracing::debug!(%id, "dropping a container whose creation failed");
                let _ = self.db.delete_container(&id);
            }
        }
    }

    /// The static init for `--init`, written under the store once (and again when a
    /// new coracle carries a different one).
    fn init_binary(&self) -> Result<PathBuf, EngineError> {
        let path = self.paths.root.join("bin/coracle-init");
        let bytes = coracle_runtime::init::INIT_BINARY;
        if std::fs::read(&path).ok().as_deref() == Some(bytes) {
            return Ok(path);
        }
        let dir = self.paths.bin();
        crate::perms::private_dir(&dir).map_err(EngineError::io("create", &dir))?;
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(EngineError::io("create", &dir))?;
        std::fs::write(tmp.path(), bytes).map_err(EngineError::io("write", tmp.path()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(EngineError::io("chmod", tmp.path()))?;
        tmp.persist(&path)
            .map_err(|e| EngineError::io("write", &path)(e.error))?;
        Ok(path)
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.paths.containers()
    }

    pub(crate) fn volume_store(&self) -> Result<VolumeStore, EngineError> {
        Ok(VolumeStore::open(self.paths.volumes())?)
    }

    fn image_for_run(
        &mut self,
        req: &RunRequest,
        progress: &dyn PullProgress,
    ) -> Result<coracle_state::ImageRecord, EngineError> {
        let pull = |engine: &mut Engine| {
            engine.images().pull(
                &req.image,
                &PullOptions {
                    platform: req.platform.clone(),
                    tls_verify: None,
                },
                progress,
            )
        };
        match req.pull {
            PullPolicy::Always => {
                pull(self)?;
            }
            PullPolicy::Missing => match self.find_image(&req.image) {
                Err(EngineError::NoSuchImage(_)) => {
                    pull(self)?;
                }
                // docker: an image of another platform counts as missing; when the
                // pull cannot bring the wanted one the mismatch is the error.
                Ok(image) if self.platform_mismatch(req, &image)?.is_some() => {
                    let _ = pull(self);
                }
                _ => {}
            },
            PullPolicy::Never => {}
        }
        let image = self.find_image(&req.image)?;
        if let Some(err) = self.platform_mismatch(req, &image)? {
            return Err(err);
        }
        Ok(image)
    }

    /// docker's refusal of a local image whose platform is not the `--platform` asked
    /// for (rather than running it anyway).
    fn platform_mismatch(
        &self,
        req: &RunRequest,
        image: &coracle_state::ImageRecord,
    ) -> Result<Option<EngineError>, EngineError> {
        let Some(wanted) = &req.platform else {
            return Ok(None);
        };
        let actual = ImageConfig::parse(&image.config)?.platform();
        // A config that names no platform cannot be told apart: run it.
        if actual.os.is_empty() || actual.architecture.is_empty() || wanted.matches(&actual) {
            return Ok(None);
        }
        Ok(Some(EngineError::InvalidArgument(format!(
            "image with reference {} was found but does not match the specified platform: wanted {}, actual: {}",
            req.image,
            platform_text(wanted),
            platform_text(&actual)
        ))))
    }
}

impl Containers<'_> {
    /// Everything up to a bundle ready to run: resolve the request against its image
    /// and this host (pure, in coracle-model), persist the record under its name, then
    /// prepare the root filesystem, network, /etc files, mounts and the bundle.
    pub fn create_container(
        &mut self,
        req: &RunRequest,
        progress: &dyn PullProgress,
    ) -> Result<PreparedContainer, EngineError> {
        let opts = &req.spec;
        if let Some(name) = &opts.name {
            if !valid_name(name) {
                return Err(EngineError::InvalidArgument(format!(
                    "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let image = self.image_for_run(req, progress)?;
        let shared = self.volumes_from(opts)?;
        let config = ImageConfig::parse(&image.config)?;
        let id = new_container_id().map_err(EngineError::io("read", "/dev/urandom"))?;
        let host = host_facts();
        let resolved =
            coracle_model::resolve(opts, &id, &image_defaults(&config), &shared.requests, &host)?;
        let new = NewContainer {
            req,
            id: &id,
            created: chrono::Utc::now(),
            image: &image,
            config: &config,
            resolved: &resolved,
            host: &host,
            shared: &shared,
        };
        let dir = self.containers_dir().join(&id);
        // The directory exists and is locked before the record does, so a concurrent
        // `rm` of the new name waits for a complete container instead of removing a
        // half-made one (see `remove_stopped`).
        crate::perms::private_dir(&dir)
            .map_err(EngineError::io("create container directory", &dir))?;
        let _dir_lock = crate::containers::lock_dir(&dir)?;
        let name = self.persist_record(&new).inspect_err(|_| {
            let _ = coracle_rootfs::remove_tree(&dir);
        })?;
        let mut guard = CreationGuard {
            engine: self,
            id: id.clone(),
            dir: dir.clone(),
            mounted: None,
            armed: true,
        };
        guard.prepare(&new, &name)?;
        guard.armed = false;
        Ok(PreparedContainer { id, name, dir })
    }
}

impl Engine {
    /// Inserts the container's record, under `--name` or a generated name that is free.
    fn persist_record(&mut self, new: &NewContainer) -> Result<String, EngineError> {
        let opts = &new.req.spec;
        loop {
            let name = match &opts.name {
                Some(n) => n.clone(),
                None => generate_name().map_err(EngineError::io("read", "/dev/urandom"))?,
            };
            let record = ContainerRecord::new_created(
                new.id.to_string(),
                name.clone(),
                new.image.id.clone(),
                new.req.image.clone(),
                new.created.timestamp(),
                crate::container_config::build(&new.config_sources(None, None)).to_json(),
            );
            match self.db.insert_container(&record) {
                Ok(()) => return Ok(name),
                // A generated name clashed: draw another.
                Err(coracle_state::StateError::NameInUse { .. }) if opts.name.is_none() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// What `create_container` has decided about a new container before anything of it
/// exists on disk.
struct NewContainer<'a> {
    req: &'a RunRequest,
    id: &'a str,
    created: chrono::DateTime<chrono::Utc>,
    image: &'a coracle_state::ImageRecord,
    config: &'a ImageConfig,
    resolved: &'a ResolvedContainer,
    host: &'a HostFacts,
    shared: &'a crate::containers::volumes_from::SharedMounts,
}

impl NewContainer<'_> {
    fn config_sources<'a>(
        &'a self,
        health: Option<&'a HealthConfig>,
        mounts: Option<&'a [ResolvedMount]>,
    ) -> crate::container_config::ConfigSources<'a> {
        crate::container_config::ConfigSources {
            id: self.id,
            created: self.created,
            request: self.req,
            image: self.config,
            args: &self.resolved.args,
            hostname: &self.resolved.hostname,
            runtime: self.req.spec.runtime.as_deref(),
            health,
            mounts,
            volumes_from: &self.shared.points,
        }
    }
}

impl CreationGuard<'_> {
    /// The root filesystem, network, /etc files, mounts and bundle of a container
    /// whose record exists; on error the guard undoes it all.
    fn prepare(&mut self, new: &NewContainer, name: &str) -> Result<(), EngineError> {
        let opts = &new.req.spec;
        let rootfs = self.mount_rootfs(new.image, opts.rm)?;
        let root = rootfs.target.clone();
        let net = self.engine.plan_network(
            new.id,
            opts,
            new.config,
            &new.resolved.hostname,
            &host_resolv_conf(),
        )?;
        self.engine
            .db
            .set_container_endpoints(new.id, &net.endpoints)?;
        let etc = self
            .engine
            .write_etc(&self.dir, &new.resolved.hostname, &net)?;
        let user = resolve_user(
            new.resolved.user.as_ref(),
            &opts.group_add,
            read_in_root(&root, "/etc/passwd").as_deref(),
            read_in_root(&root, "/etc/group").as_deref(),
        )?;
        coracle_rootfs::ensure_dir_in_root(&root, &new.resolved.cwd, 0o755)?;
        let (mounts, anonymous_volumes) =
            self.engine.resolve_mounts(&new.resolved.mounts, &root)?;
        let input = self.engine.spec_input(new, root, user, mounts, &net, etc)?;
        self.engine.write_bundle(&self.dir, opts, &input)?;
        let monitor_config = ContainerRuntimeConfig {
            id: new.id.to_string(),
            name: name.to_string(),
            rm: opts.rm,
            tty: opts.tty,
            interactive: opts.interactive,
            runtime: opts.runtime.clone(),
            rootfs,
            restart: opts.restart,
            log: opts.log.clone(),
            health: new.resolved.health.clone(),
            stop_signal: new.resolved.stop_signal,
            stop_timeout: new.resolved.stop_timeout,
            anonymous_volumes,
            group_add: new.resolved.group_add.clone(),
            network: crate::stored::NetworkConfig {
                // Each start puts the linked containers' variables into this.
                link_base_env: if net.config.legacy_links.is_empty() {
                    Vec::new()
                } else {
                    input.env.clone()
                },
                ..net.config.clone()
            },
            cgroups_path: Some(input.cgroups_path.clone()),
        };
        let cfg_path = self.dir.join("container.json");
        crate::perms::write_private(
            &cfg_path,
            &serde_json::to_vec_pretty(&monitor_config).expect("config serialises"),
        )
        .map_err(EngineError::io("write", &cfg_path))?;
        // Mounted only while it runs: the monitor mounts it at each start. A `--rm`
        // container's overlay is volatile, which overlayfs refuses to mount a second
        // time, and it runs once: it stays mounted until its monitor removes it.
        if !opts.rm {
            snapshot::unmount(&monitor_config.rootfs)?;
        }
        self.mounted = None;
        self.engine.store_container_config(
            &new.config_sources(monitor_config.health.as_ref(), Some(&input.mounts)),
        )
    }

    /// The image's layer dirs, top-most first, under an overlay (a private copy where
    /// the store cannot have one).
    fn mount_rootfs(
        &mut self,
        image: &coracle_state::ImageRecord,
        rm: bool,
    ) -> Result<RootfsMount, EngineError> {
        let lowers: Vec<PathBuf> = image
            .layers
            .iter()
            .rev()
            .map(|l| self.engine.layers.path(&l.chain_id))
            .collect();
        // A `--rm` container's upper dir is thrown away at exit, so overlay need not
        // sync it on unmount (podman makes the same choice); kept containers are not
        // volatile, so `start` can reuse their upper dir after a host crash.
        let prepare = snapshot::PrepareOptions {
            backend: snapshot::Backend::Auto,
            rootless: !rustix::process::geteuid().is_root(),
            volatile: rm,
        };
        let rootfs = snapshot::prepare_with(&self.dir, &lowers, &prepare)?;
        let rootfs = match snapshot::mount(&rootfs) {
            Ok(()) => rootfs,
            // No overlay here (or not on this filesystem): a private copy instead.
            Err(e) if e.kind() == coracle_core::ErrorKind::Unavailable => {
                tracing::debug!(error = %e, "no overlay for this store, copying the layers");
                let copy = snapshot::prepare_with(
                    &self.dir,
                    &lowers,
                    &snapshot::PrepareOptions {
                        backend: snapshot::Backend::Copy,
                        ..prepare
                    },
                )?;
                snapshot::mount(&copy)?;
                copy
            }
            Err(e) => return Err(e.into()),
        };
        self.mounted = Some(rootfs.clone());
        Ok(rootfs)
    }
}

impl Engine {
    /// The container's hostname, hosts and resolv.conf files (another container's,
    /// for one on that container's network).
    fn write_etc(
        &self,
        dir: &Path,
        hostname: &str,
        net: &NetworkPlan,
    ) -> Result<etc_files::EtcFiles, EngineError> {
        let mut etc = etc_files::write_etc_files(
            dir,
            &etc_files::EtcConfig {
                hosts: etc_files::HostsConfig {
                    hostname: hostname.to_string(),
                    domainname: None,
                    ip: None,
                    extra_hosts: net.config.extra_hosts.clone(),
                },
                host_resolv_conf: host_resolv_conf(),
                ipv6: false,
                dns: net.dns.clone(),
            },
        )
        .map_err(EngineError::io("write /etc files for", dir))?;
        if let Some(target) = &net.shared_etc_from {
            // docker: a container on another's network shares its names.
            let t = self.containers_dir().join(target);
            etc.hosts = t.join("hosts");
            etc.resolv_conf = t.join("resolv.conf");
        }
        Ok(etc)
    }

    /// The runtime spec's input: the resolved container with what only its root
    /// filesystem and network could tell (user, mounts, namespace, /etc files).
    fn spec_input(
        &self,
        new: &NewContainer,
        root: PathBuf,
        user: crate::containers::users::ResolvedUser,
        mounts: Vec<ResolvedMount>,
        net: &NetworkPlan,
        etc: etc_files::EtcFiles,
    ) -> Result<SpecInput, EngineError> {
        let (opts, resolved) = (&new.req.spec, new.resolved);
        let env = coracle_model::merge_env(
            new.config.config.env.as_deref().unwrap_or(&[]),
            &opts.env,
            &EnvContext {
                hostname: resolved.hostname.clone(),
                home: user.home.clone(),
                tty: opts.tty,
            },
        );
        let seccomp = match &opts.security.seccomp {
            SeccompOption::Default => SeccompChoice::Default,
            SeccompOption::Unconfined => SeccompChoice::Unconfined,
            SeccompOption::Profile(p) => SeccompChoice::Profile(
                std::fs::read_to_string(p).map_err(EngineError::io("read seccomp profile", p))?,
            ),
        };
        Ok(SpecInput {
            rootfs: root,
            readonly_rootfs: opts.read_only,
            args: resolved.args.clone(),
            env,
            cwd: resolved.cwd.clone(),
            user: user.user,
            terminal: opts.tty,
            hostname: (opts.uts == NamespaceMode::Private).then(|| resolved.hostname.clone()),
            domainname: opts.domainname.clone().filter(|d| !d.is_empty()),
            namespaces: spec::Namespaces {
                pid: opts.pid,
                ipc: opts.ipc,
                uts: opts.uts,
                cgroup: opts.cgroupns,
                network: net.namespace.clone(),
            },
            cgroups_path: resolved.cgroups_path.clone(),
            mounts,
            etc_files: spec::EtcFiles {
                hostname: Some(etc.hostname.clone()),
                hosts: Some(etc.hosts.clone()),
                resolv_conf: Some(etc.resolv_conf.clone()),
            },
            resources: {
                let mut r = opts.resources();
                crate::containers::blkio::resolve(opts, &mut r)?;
                r
            },
            ulimits: opts.ulimits.clone(),
            host_hard_limits: new.host.hard_limits.clone(),
            shm_size: opts.shm_size,
            devices: crate::containers::devices::resolve(&opts.devices, opts.privileged)?,
            sysctls: opts.sysctls.clone(),
            privileged: opts.privileged,
            capabilities: resolved.capabilities.clone(),
            seccomp,
            no_new_privileges: opts.security.no_new_privileges,
            unconfined_system_paths: opts.security.unconfined_system_paths,
            init: if opts.init {
                Some(self.init_binary()?)
            } else {
                None
            },
            oom_score_adj: resolved.oom_score_adj,
            arch: std::env::consts::ARCH.to_string(),
            kernel: host_kernel(),
        })
    }

    /// The OCI spec from `input`, confined for this host's LSM and adapted to the
    /// runtime that will read it, as the bundle's config.json.
    fn write_bundle(
        &self,
        dir: &Path,
        opts: &ContainerSpec,
        input: &SpecInput,
    ) -> Result<(), EngineError> {
        let mut spec = spec::build_spec(input)?;
        drop_unrunnable_seccomp_arches(&mut spec);
        let builtin = opts
            .runtime
            .as_deref()
            .is_none_or(|r| r.is_empty() || r == coracle_runtime::runtime::BUILTIN);
        if builtin {
            crate::containers::devices::check_builtin_paths(&input.devices)?;
        }
        crate::containers::lsm::confine(
            &mut spec,
            coracle_runtime::lsm::HostLsm::detect(Path::new("/")),
            &crate::containers::lsm::Confinement {
                security: &opts.security,
                privileged: opts.privileged,
                shares_host_pid_or_ipc: opts.pid == NamespaceMode::Host
                    || opts.ipc == NamespaceMode::Host,
                builtin_runtime: builtin,
                containers_dir: &self.containers_dir(),
                mounts: &opts.mounts,
            },
        )?;
        if builtin {
            // The bundle is for youki, which reads MASKED_EQ arguments swapped.
            if let Some(linux) = spec.linux_mut().as_mut() {
                if let Some(seccomp) = linux.seccomp().clone() {
                    linux.set_seccomp(Some(
                        coracle_runtime::seccomp::swap_masked_eq_for_libcontainer(&seccomp),
                    ));
                }
            }
        }
        let config_path = dir.join("config.json");
        let json = serde_json::to_vec_pretty(&spec).expect("specs serialise");
        crate::perms::write_private(&config_path, &json)
            .map_err(EngineError::io("write", &config_path))
    }

    /// Binds, volumes and tmpfs mounts with host paths, targets checked inside the
    /// rootfs (never following a symlink out of it).
    fn resolve_mounts(
        &mut self,
        requests: &[MountRequest],
        root: &Path,
    ) -> Result<(Vec<ResolvedMount>, Vec<String>), EngineError> {
        let volumes = self.volume_store()?;
        let mut out = Vec::new();
        let mut anonymous = Vec::new();
        for m in requests {
            refuse_proc_mount(m)?;
        }
        for m in requests {
            match m {
                MountRequest::Bind {
                    source,
                    target,
                    read_only,
                    propagation,
                    create_source,
                    recursive,
                    // applied with the SELinux labels (crate::containers::lsm)
                    relabel: _,
                } => {
                    if !source.exists() {
                        if *create_source {
                            std::fs::create_dir_all(source)
                                .map_err(EngineError::io("create bind source", source))?;
                        } else {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                source.display()
                            )));
                        }
                    }
                    if source.is_dir() {
                        coracle_rootfs::ensure_dir_in_root(root, target, 0o755)?;
                    } else {
                        coracle_rootfs::ensure_file_in_root(root, target, 0o644)?;
                    }
                    out.push(ResolvedMount::Bind {
                        source: source.clone(),
                        target: target.clone(),
                        read_only: *read_only,
                        propagation: *propagation,
                        recursive: *recursive,
                    });
                }
                MountRequest::Named {
                    name,
                    target,
                    read_only,
                    no_copy,
                } => {
                    out.push(
                        self.volume_mount(&volumes, name, target, *read_only, *no_copy, root)?,
                    );
                }
                MountRequest::Anonymous {
                    target,
                    read_only,
                    no_copy,
                } => {
                    let name =
                        new_container_id().map_err(EngineError::io("read", "/dev/urandom"))?;
                    // docker's mark, which `volume prune` without --all goes by.
                    let mark = [(crate::volumes::ANONYMOUS_LABEL.to_string(), String::new())];
                    volumes.create(&name, mark.into())?;
                    out.push(
                        self.volume_mount(&volumes, &name, target, *read_only, *no_copy, root)?,
                    );
                    anonymous.push(name);
                }
                MountRequest::Tmpfs(t) => {
                    coracle_rootfs::ensure_dir_in_root(root, &t.target, 0o755)?;
                    out.push(ResolvedMount::Tmpfs {
                        target: t.target.clone(),
                        options: t.options.clone(),
                    });
                }
            }
        }
        Ok((out, anonymous))
    }

    /// A named volume, created on first use and then filled with what the image has
    /// at the mount point (docker's copy-up), unless `nocopy`.
    fn volume_mount(
        &self,
        volumes: &VolumeStore,
        name: &str,
        target: &str,
        read_only: bool,
        no_copy: bool,
        root: &Path,
    ) -> Result<ResolvedMount, EngineError> {
        // Creating an existing volume returns it; copy-up fills only an empty one
        // (docker's rule), so a reused volume keeps its data.
        volumes.create(name, Default::default())?;
        let data = volumes.path(name);
        let at_target = coracle_rootfs::ensure_dir_in_root(root, target, 0o755)?;
        if !no_copy {
            // docker fills a volume with mount options through its mount, mounted for
            // the copy only (so a tmpfs volume starts empty again unless in use).
            let user = format!("populate-{}", std::process::id());
            let mounted = volumes.acquire(name, &user)?;
            let copied = coracle_rootfs::volume::copy_up(&at_target, &data)
                .map_err(EngineError::io("fill volume from the image", &data));
            if mounted.is_some() {
                drop(mounted);
                volumes.release(name, &user)?;
            }
            copied?;
        }
        Ok(ResolvedMount::Bind {
            source: data,
            target: target.to_string(),
            read_only,
            propagation: None,
            recursive: true,
        })
    }
}

/// A platform as docker prints it (containerd's normal form: arm64's implied `v8`
/// left out).
fn platform_text(p: &Platform) -> String {
    match (&*p.architecture, p.variant.as_deref()) {
        ("arm64", Some("v8")) => format!("{}/arm64", p.os),
        _ => p.to_string(),
    }
}

/// The image config's part in a container, as coracle-model resolves it.
fn image_defaults(config: &ImageConfig) -> ImageDefaults {
    let c = &config.config;
    ImageDefaults {
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        env: c.env.clone().unwrap_or_default(),
        user: c.user.clone(),
        working_dir: c.working_dir.clone(),
        volumes: c.volumes.iter().flat_map(|v| v.keys().cloned()).collect(),
        stop_signal: c.stop_signal.clone(),
        healthcheck: image_health(config),
    }
}

/// The image's HEALTHCHECK in the form `--health-*` flags merge into.
fn image_health(config: &ImageConfig) -> Option<HealthConfig> {
    let h = config.config.healthcheck.as_ref()?;
    let ns = |v: Option<i64>| v.filter(|n| *n > 0).unwrap_or(0) as u64;
    Some(HealthConfig {
        test: h.test.clone().unwrap_or_default(),
        interval: ns(h.interval),
        timeout: ns(h.timeout),
        start_period: ns(h.start_period),
        start_interval: ns(h.start_interval),
        retries: h.retries.filter(|r| *r > 0).unwrap_or(0) as u32,
    })
}

/// What this host and process allow a container (read from /proc).
fn host_facts() -> HostFacts {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(u64::MAX)
    };
    fn number<T: std::str::FromStr>(path: &str) -> Option<T> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
    HostFacts {
        nodename: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        bounding_capabilities: mask("CapBnd:"),
        effective_capabilities: mask("CapEff:"),
        last_cap: number("/proc/sys/kernel/cap_last_cap").unwrap_or(40),
        oom_score_adj: number("/proc/self/oom_score_adj").unwrap_or(0),
        hard_limits: host_hard_limits(),
    }
}

fn host_resolv_conf() -> String {
    std::fs::read_to_string(etc_files::host_resolv_conf_path()).unwrap_or_default()
}

/// A file inside the rootfs, read without following symlinks out of it; None when
/// absent.
fn read_in_root(root: &Path, path: &str) -> Option<String> {
    let p = coracle_rootfs::resolve_in_root(root, path).ok()?;
    std::fs::read_to_string(p).ok()
}

fn host_hard_limits() -> std::collections::HashMap<String, u64> {
    use rustix::process::{getrlimit, Resource};
    let mut out = std::collections::HashMap::new();
    for (name, res) in [
        ("RLIMIT_NOFILE", Resource::Nofile),
        ("RLIMIT_NPROC", Resource::Nproc),
        ("RLIMIT_CORE", Resource::Core),
        ("RLIMIT_MEMLOCK", Resource::Memlock),
        ("RLIMIT_STACK", Resource::Stack),
        ("RLIMIT_FSIZE", Resource::Fsize),
        ("RLIMIT_CPU", Resource::Cpu),
        ("RLIMIT_AS", Resource::As),
        ("RLIMIT_DATA", Resource::Data),
        ("RLIMIT_LOCKS", Resource::Locks),
        ("RLIMIT_MSGQUEUE", Resource::Msgqueue),
        ("RLIMIT_NICE", Resource::Nice),
        ("RLIMIT_RTPRIO", Resource::Rtprio),
        ("RLIMIT_SIGPENDING", Resource::Sigpending),
    ] {
        if let Some(max) = getrlimit(res).maximum {
            out.insert(name.to_string(), max);
        }
    }
    out
}

fn host_kernel() -> Option<coracle_runtime::seccomp::KernelVersion> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    coracle_runtime::seccomp::KernelVersion::parse(release.trim())
}

/// Docker's profile filters x86_64, x86 and x32 on amd64. On a kernel without the x32
/// ABI (built or booted without it) no x32 program runs, so rules for that ABI protect
/// nothing; x32 syscall numbers stay refused (the x86_64 filter rejects them). Each
/// extra architecture multiplies the time libseccomp takes to build the filter on
/// every start (here 14 ms -> 7 ms of CPU).
fn drop_unrunnable_seccomp_arches(spec: &mut oci_spec::runtime::Spec) {
    if x32_abi_available() {
        return;
    }
    let Some(seccomp) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.seccomp_mut().as_mut())
    else {
        return;
    };
    if let Some(arches) = seccomp.architectures() {
        let kept: Vec<_> = arches
            .iter()
            .copied()
            .filter(|a| *a != oci_spec::runtime::Arch::ScmpArchX32)
            .collect();
        seccomp.set_architectures(Some(kept));
    }
}

#[cfg(target_arch = "x86_64")]
fn x32_abi_available() -> bool {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // getpid through the x32 ABI: harmless, and ENOSYS when the kernel has no x32.
    let r = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
    r >= 0
}

#[cfg(not(target_arch = "x86_64"))]
fn x32_abi_available() -> bool {
    false
}

/// Mounts over or inside /proc are refused before anything is created (runc's rule,
/// which makes docker refuse to start such a container).
fn refuse_proc_mount(m: &MountRequest) -> Result<(), EngineError> {
    let (source, target, procfs) = match m {
        MountRequest::Bind { source, target, .. } => {
            let procfs = crate::host::fs_magic(source) == Some(PROC_SUPER_MAGIC);
            (source.display().to_string(), target, procfs)
        }
        MountRequest::Named { name, target, .. } => (name.clone(), target, false),
        MountRequest::Anonymous { target, .. } => ("volume".to_string(), target, false),
        MountRequest::Tmpfs(t) => ("tmpfs".to_string(), &t.target, false),
    };
    coracle_model::check_proc_mount(&source, target, procfs).map_err(EngineError::InvalidArgument)
}

/// linux/magic.h
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
