//! Writing OCI image-layout archives: `oci-layout`, `index.json`, `blobs/sha256/*`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Entry, EntryKind, Error, OciImage, Result};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What `write_archive` built for one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub name: String,
    /// `sha256:…` of the manifest: the image's digest in containerd.
    pub manifest_digest: String,
    /// `sha256:…` of the config: the image id CRI reports.
    pub config_digest: String,
}

/// One image made ready to write: its blobs (config, layer, manifest) and the index
/// descriptor naming it.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub built: Built,
    descriptor: serde_json::Value,
    blobs: BTreeMap<String, Vec<u8>>,
}

/// Builds one image's layer, config and manifest in memory.
pub fn prepare(image: &OciImage) -> Result<Prepared> {
    let mut blobs = BTreeMap::new();
    let (descriptor, built) = add_image(image, &mut blobs)?;
    Ok(Prepared {
        built,
        descriptor,
        blobs,
    })
}

/// Writes `images` as one OCI image-layout tar at `out`.
pub fn write_archive(images: &[OciImage], out: &Path) -> Result<Vec<Built>> {
    let prepared = images.iter().map(prepare).collect::<Result<Vec<_>>>()?;
    write_prepared(&prepared.iter().collect::<Vec<_>>(), out)?;
    Ok(prepared.into_iter().map(|p| p.built).collect())
}

/// Writes prepared images as one OCI image-layout tar at `out`.
pub fn write_prepared(images: &[&Prepared], out: &Path) -> Result<()> {
    let mut blobs: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for p in images {
        blobs.extend(p.blobs.iter().map(|(d, b)| (d.as_str(), b.as_slice())));
    }
    let manifests: Vec<_> = images.iter().map(|p| &p.descriptor).collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });

    let file = File::create(out).map_err(|e| io("cannot create", out, e))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let mut put = |path: &str, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, data)
    };
    let mut write = || -> std::io::Result<()> {
        put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        put("index.json", &serde_json::to_vec(&index)?)?;
        for (digest, data) in &blobs {
            put(&format!("blobs/sha256/{}", hex_of(digest)), data)?;
        }
        Ok(())
    };
    write().map_err(|e| io("cannot write", out, e))?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| io("cannot write", out, e))?;
    Ok(())
}

/// Adds one image's layer, config and manifest to `blobs`; returns its index descriptor.
fn add_image(
    image: &OciImage,
    blobs: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(serde_json::Value, Built)> {
    let layer_tar = layer(&image.entries)?;
    let diff_id = sha256(&layer_tar);
    // Level 1: five times faster than the default for 15% more bytes; images are built
    // at every agent start and never leave the machine.
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let gz_done = gz.write_all(&layer_tar).and_then(|_| gz.finish());
    let layer_gz =
        gz_done.map_err(|e| io("cannot compress layer of", Path::new(&image.name), e))?;

    let arch = go_arch();
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": image.env,
            "Entrypoint": image.entrypoint,
            "Cmd": image.cmd,
            "WorkingDir": image.working_dir,
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": "k8rs image builder" }],
    });
    let config = serde_json::to_vec(&config).expect("json values serialise");
    let config_desc = put_blob(blobs, CONFIG, config);
    let layer_desc = put_blob(blobs, LAYER, layer_gz);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
    });
    let manifest = serde_json::to_vec(&manifest).expect("json values serialise");
    let mut manifest_desc = put_blob(blobs, MANIFEST, manifest);
    manifest_desc["platform"] = json!({ "architecture": arch, "os": "linux" });
    // containerd's importer takes the name from its own annotation as is; the OCI one
    // alone would be rewritten by ctr's --base-name prefix logic.
    manifest_desc["annotations"] = json!({
        "io.containerd.image.name": image.name,
        "org.opencontainers.image.ref.name": image.name,
    });
    let built = Built {
        name: image.name.clone(),
        manifest_digest: manifest_desc["digest"].as_str().unwrap_or_default().into(),
        config_digest: config_desc["digest"].as_str().unwrap_or_default().into(),
    };
    Ok((manifest_desc, built))
}

/// The uncompressed layer tar: entries sorted by path, implied parents added as 0755
/// directories, owners root, mtimes zero.
fn layer(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut tree: BTreeMap<String, &EntryKind> = BTreeMap::new();
    const PARENT: EntryKind = EntryKind::Dir(0o755);
    for e in entries {
        let rel = relative(&e.path)?;
        let mut parent = String::new();
        for part in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |p| p.1)
        {
            parent = if parent.is_empty() {
                part.to_string()
            } else {
                format!("{parent}/{part}")
            };
            tree.entry(parent.clone()).or_insert(&PARENT);
        }
        tree.insert(rel, &e.kind);
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (path, kind) in tree {
        let failed = |e| io("cannot add to layer", Path::new(&path), e);
        match kind {
            EntryKind::Dir(mode) => {
                let mut h = header(tar::EntryType::Directory, *mode);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(failed)?;
            }
            EntryKind::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, 0o777);
                tar.append_link(&mut h, &path, target).map_err(failed)?;
            }
            EntryKind::Bytes { data, mode } => {
                let mut h = header(tar::EntryType::Regular, *mode);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, &path, &data[..]).map_err(failed)?;
            }
            EntryKind::HostFile(host) => {
                use std::os::unix::fs::PermissionsExt;
                let data = fs::read(host).map_err(|e| io("cannot read", host, e))?;
                let meta = fs::metadata(host).map_err(|e| io("cannot stat", host, e))?;
                let mut h = header(tar::EntryType::Regular, meta.permissions().mode() & 0o7777);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, &path, &data[..]).map_err(failed)?;
            }
        }
    }
    tar.into_inner()
        .map_err(|e| io("cannot finish layer", Path::new("/"), e))
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h
}

/// `/usr/bin/x` → `usr/bin/x`; rejects relative paths and `..`.
fn relative(path: &str) -> Result<String> {
    let rel = path
        .strip_prefix('/')
        .ok_or_else(|| Error::BadPath(path.into()))?;
    let rel = rel.trim_end_matches('/');
    if rel.is_empty()
        || rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(Error::BadPath(path.into()));
    }
    Ok(rel.into())
}

fn put_blob(
    blobs: &mut BTreeMap<String, Vec<u8>>,
    media_type: &str,
    data: Vec<u8>,
) -> serde_json::Value {
    let digest = sha256(&data);
    let desc = json!({ "mediaType": media_type, "digest": digest, "size": data.len() });
    blobs.insert(digest, data);
    desc
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// The OCI/Go name of this machine's architecture.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        what,
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(layer: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(layer);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn layer_adds_parents_in_order() {
        let l = layer(&[
            Entry::symlink("/usr/bin/env", "/bin/busybox"),
            Entry::bytes("/bin/busybox", "x", 0o755),
        ])
        .unwrap();
        assert_eq!(
            names(&l),
            ["bin/", "bin/busybox", "usr/", "usr/bin/", "usr/bin/env"]
        );
    }

    #[test]
    fn rejects_escaping_paths() {
        assert!(relative("bin/x").is_err());
        assert!(relative("/a/../b").is_err());
        assert_eq!(relative("/a/b/").unwrap(), "a/b");
    }

    #[test]
    fn archive_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let img = OciImage {
            name: "example.com/x:1".into(),
            entries: vec![Entry::bytes("/hello", "hi", 0o644)],
            cmd: vec!["/hello".into()],
            ..Default::default()
        };
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        let built = write_archive(std::slice::from_ref(&img), &a).unwrap();
        write_archive(&[img], &b).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert!(built[0].manifest_digest.starts_with("sha256:"));
        let files = names(&fs::read(&a).unwrap());
        assert!(files.contains(&"index.json".to_string()), "{files:?}");
        assert_eq!(
            files.len(),
            5,
            "layout, index, manifest, config, layer: {files:?}"
        );
    }
}
