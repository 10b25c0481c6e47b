//! Ready-made fixtures exercising every tar feature the unpacker must handle.

use crate::image::{Compression, Format, Image, ImageBuilder};
use crate::layer::Layer;

/// `security.capability` granting cap_net_bind_service (bit 10), effective, v2 format.
pub const CAP_NET_BIND_SERVICE_XATTR: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, // magic_etc: VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    0x00, 0x04, 0x00, 0x00, // permitted[0] = 1 << 10
    0x00, 0x00, 0x00, 0x00, // inheritable[0]
    0x00, 0x00, 0x00, 0x00, // permitted[1]
    0x00, 0x00, 0x00, 0x00, // inheritable[1]
];

/// Namespace for fixture constructors.
pub struct Fixture;

impl Fixture {
    /// A path longer than 100 bytes (one long file name under `data/`).
    pub fn long_path() -> String {
        format!("data/{}", "l".repeat(120))
    }

    /// A path longer than 255 bytes (nested dirs of 60-byte names).
    pub fn very_long_dirs() -> Vec<String> {
        let mut dirs = Vec::new();
        let mut p = "data/deep".to_string();
        dirs.push(p.clone());
        for i in 0..5 {
            p = format!("{p}/{}", format!("{i}").repeat(60));
            dirs.push(p.clone());
        }
        dirs
    }

    pub fn very_long_path() -> String {
        format!(
            "{}/file-at-the-bottom",
            Fixture::very_long_dirs().last().unwrap()
        )
    }

    /// The three layers of [`Fixture::every_tar_feature`], bottom first.
    ///
    /// After applying all three, under `/data`:
    /// - `plain` (0644, content "layer 2\n", rewritten by layer 2), `exec` 0755,
    ///   `setuid` 04755, `readonly` 0400, `mtime` (mtime 1234567890)
    /// - dirs `setgid` 02775, `sticky` 01777, `owned-dir` 0750 1000:1000
    /// - `owned` 0640 1000:1000
    /// - `rel-link -> plain`, `abs-link -> /data/plain`, `dangling -> /nonexistent`
    /// - `hardlink` (hard link to `data/exec`), `fifo`, `null` (char 1:3)
    /// - `xattr` (user.test=hello), `cap` (security.capability = cap_net_bind_service+ep)
    /// - [`Fixture::long_path`], [`Fixture::very_long_path`]
    /// - `ünïcødé-文件.txt`, `日本語/ファイル`
    /// - `to-delete` is gone (whiteout in layer 2), `opaque-dir` has only `new`
    ///   (opaque in layer 2; `old1`, `old2/` gone), `to-delete-dir` is gone (layer 3),
    ///   `layer2` and `layer3` exist.
    pub fn every_tar_feature_layers() -> Vec<Layer> {
        let mut l1 = Layer::new()
            .dir("data", 0o755)
            .file("data/plain", "plain\n", 0o644)
            .file("data/exec", "#!/bin/sh\necho hi\n", 0o755)
            .file("data/setuid", "setuid\n", 0o4755)
            .file("data/readonly", "ro\n", 0o400)
            .file("data/mtime", "old\n", 0o644)
            .mtime(1_234_567_890)
            .dir("data/setgid", 0o2775)
            .dir("data/sticky", 0o1777)
            .dir("data/owned-dir", 0o750)
            .owner(1000, 1000)
            .file("data/owned", "mine\n", 0o640)
            .owner(1000, 1000)
            .symlink("data/rel-link", "plain")
            .symlink("data/abs-link", "/data/plain")
            .symlink("data/dangling", "/nonexistent")
            .hardlink("data/hardlink", "data/exec")
            .fifo("data/fifo")
            .char_device("data/null", 1, 3)
            .file("data/xattr", "x\n", 0o644)
            .xattr("user.test", "hello")
            .file("data/cap", "cap\n", 0o755)
            .xattr("security.capability", CAP_NET_BIND_SERVICE_XATTR)
            .file(&Fixture::long_path(), "long\n", 0o644);
        for d in Fixture::very_long_dirs() {
            l1 = l1.dir(&d, 0o755);
        }
        let l1 = l1
            .file(&Fixture::very_long_path(), "deep\n", 0o644)
            .file("data/ünïcødé-文件.txt", "utf8\n", 0o644)
            .dir("data/日本語", 0o755)
            .file("data/日本語/ファイル", "nihongo\n", 0o644)
            .file("data/to-delete", "bye\n", 0o644)
            .dir("data/to-delete-dir", 0o755)
            .file("data/to-delete-dir/inner", "bye\n", 0o644)
            .dir("data/opaque-dir", 0o755)
            .file("data/opaque-dir/old1", "old\n", 0o644)
            .dir("data/opaque-dir/old2", 0o755)
            .file("data/opaque-dir/old2/inner", "old\n", 0o644);
        let l2 = Layer::new()
            .dir("data", 0o755)
            .file("data/plain", "layer 2\n", 0o644)
            .whiteout("data/to-delete")
            .dir("data/opaque-dir", 0o755)
            .opaque("data/opaque-dir")
            .file("data/opaque-dir/new", "new\n", 0o644)
            .file("data/layer2", "2\n", 0o644);
        let l3 = Layer::new()
            .dir("data", 0o755)
            .whiteout("data/to-delete-dir")
            .file("data/layer3", "3\n", 0o644);
        vec![l1, l2, l3]
    }

    /// A three-layer image exercising every tar feature (see [`Fixture::every_tar_feature_layers`]).
    pub fn every_tar_feature() -> Image {
        Fixture::every_tar_feature_with(Compression::Gzip, Format::Oci)
    }

    pub fn every_tar_feature_with(compression: Compression, format: Format) -> Image {
        let mut b = ImageBuilder::new()
            .compression(compression)
            .format(format)
            .cmd(&["/bin/sh"]);
        for l in Fixture::every_tar_feature_layers() {
            b = b.layer(&l);
        }
        b.build()
    }
}
