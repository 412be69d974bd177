//! Unmounting what containerd leaves under a directory (sandbox shm, network
//! namespaces, container rootfs), so the directory can be removed and reused.

use std::path::{Path, PathBuf};

/// Lazily unmounts every mount point at or under `dir`, deepest first, repeating while
/// stacked mounts remain. Returns how many it unmounted.
pub fn unmount_all_under(dir: &Path) -> std::io::Result<usize> {
    let dir = dir.canonicalize()?;
    let mut count = 0;
    // Bounded: each round removes the top mount of every point, so stacks end.
    for _ in 0..16 {
        let mut points = mount_points_under(&dir)?;
        if points.is_empty() {
            break;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for p in points {
            match rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) => count += 1,
                Err(e) => tracing::warn!(path = %p.display(), error = %e, "unmount failed"),
            }
        }
    }
    Ok(count)
}

/// Mount points at or under `dir`, from /proc/self/mountinfo.
pub fn mount_points_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_octal() {
        assert_eq!(super::unescape(r"/a\040b\\c"), r"/a b\\c");
        assert_eq!(super::unescape(r"/a\134b"), r"/a\b");
    }
}
