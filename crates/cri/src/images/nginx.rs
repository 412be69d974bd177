//! `nginx`: Debian's nginx (packages `nginx` and `nginx-common`, unpacked by
//! scripts/deps.sh, not installed) with the host's libraries, set up like the official
//! image: the stock welcome page on port 80, `nginx -g 'daemon off;'` in the foreground,
//! access and error logs linked to stdout and stderr, workers as `www-data`. busybox
//! comes along so `kubectl exec … -- sh` works, as the official (Debian-based) image has
//! a shell.

use std::path::{Path, PathBuf};

use super::libs::binary_with_libraries;
use super::{Entry, Error, OciImage, Result};

pub const NGINX_IMAGE: &str = "docker.io/library/nginx:latest";

/// Where scripts/deps.sh unpacks Debian's nginx packages.
pub const DEFAULT_NGINX_ROOT: &str = "/usr/local/lib/k8rs/nginx";

const NGINX_CONF: &str = r#"# Written by k8rs, after the official nginx image's.
user  www-data;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"#;

/// IPv4 only: `listen [::]:80` fails where the pod has no IPv6 (the official image's
/// entrypoint removes it in that case; this image has no entrypoint script).
const DEFAULT_CONF: &str = r#"server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"#;

const ERROR_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Error</title>\n</head>\n<body>\n\
<h1>An error occurred.</h1>\n<p>Sorry, the page you are looking for is currently unavailable.<br/>\n\
Please try again later.</p>\n</body>\n</html>\n";

/// The nginx image from the unpacked packages under `root`, plus busybox (its applets
/// under /bin and friends) when given.
pub fn nginx_image(root: &Path, busybox: Option<&Path>) -> Result<OciImage> {
    let binary = root.join("usr/sbin/nginx");
    let index = root.join("usr/share/nginx/html/index.html");
    for path in [&binary, &index] {
        if !path.is_file() {
            return Err(Error::Missing {
                what: "nginx file",
                path: path.clone(),
                fix: "run scripts/deps.sh (it unpacks Debian's nginx and nginx-common packages there)",
            });
        }
    }
    let mut entries = match busybox {
        Some(b) => super::busybox_image(b)?.entries,
        None => Vec::new(),
    };
    entries.extend(binary_with_libraries("/usr/sbin/nginx", &binary)?);

    // The package's config snippets (mime.types, fastcgi_params, …), but our nginx.conf.
    let etc = root.join("etc/nginx");
    let mut names = read_dir_files(&etc)?;
    names.sort();
    for (name, path) in names {
        if name != "nginx.conf" {
            entries.push(Entry::host_file(&format!("/etc/nginx/{name}"), path));
        }
    }
    entries.extend([
        Entry::bytes("/etc/nginx/nginx.conf", NGINX_CONF, 0o644),
        Entry::bytes("/etc/nginx/conf.d/default.conf", DEFAULT_CONF, 0o644),
        Entry::host_file("/usr/share/nginx/html/index.html", index),
        Entry::bytes("/usr/share/nginx/html/50x.html", ERROR_PAGE, 0o644),
        Entry::dir("/usr/lib/nginx/modules", 0o755),
        Entry::dir("/var/lib/nginx", 0o755),
        Entry::dir("/var/cache/nginx", 0o755),
        Entry::dir("/var/log/nginx", 0o755),
        Entry::symlink("/var/log/nginx/access.log", "/dev/stdout"),
        Entry::symlink("/var/log/nginx/error.log", "/dev/stderr"),
        Entry::dir("/run", 0o755),
        Entry::dir("/run/lock", 0o1777),
        Entry::symlink("/var/lock", "/run/lock"),
        Entry::dir("/tmp", 0o1777),
        Entry::dir("/root", 0o700),
        Entry::bytes(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n\
             www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            0o644,
        ),
        Entry::bytes(
            "/etc/group",
            "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
            0o644,
        ),
        // nginx resolves `user www-data` through glibc's NSS.
        Entry::bytes(
            "/etc/nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
            0o644,
        ),
    ]);
    Ok(OciImage {
        name: NGINX_IMAGE.into(),
        entries,
        cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        env: vec![super::builtin::PATH_ENV.into()],
        working_dir: "/".into(),
        ..Default::default()
    })
}

/// The regular files directly in `dir`: (name, path).
fn read_dir_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let failed = |e| Error::Io {
        what: "cannot read",
        path: dir.into(),
        source: e,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        if entry.file_type().map_err(failed)?.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_root_names_the_path_and_the_fix() {
        let err = nginx_image(Path::new("/nonexistent/nginx"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "nginx file /nonexistent/nginx/usr/sbin/nginx not found: run scripts/deps.sh \
             (it unpacks Debian's nginx and nginx-common packages there)"
        );
    }
}
