//! The node's pod network as a CNI config: a bridge with host-local addresses from the
//! node's podCIDR, masquerade for traffic leaving the pod network, and portmap for
//! hostPort. containerd's CRI adds the loopback network itself and loads only the
//! first conflist of the directory, so this one file is the pod network.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::{Error, Result};

/// The file name; `10-` sorts it first, as containerd wants the pod network first.
pub const CONFLIST: &str = "10-k8rs.conflist";

#[derive(Clone, Debug)]
pub struct Network {
    /// The Linux bridge (at most 15 bytes), e.g. `cni0`.
    pub bridge: String,
    /// The node's podCIDR.
    pub subnet: ipnet::IpNet,
    /// host-local's allocation records (default /var/lib/cni/networks, which would be
    /// shared with any other CNI user on the machine).
    pub ipam_dir: PathBuf,
}

/// The conflist text.
pub fn render(net: &Network) -> String {
    let conf = json!({
        "cniVersion": "0.4.0",
        "name": "k8rs",
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.subnet.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": net.ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        ],
    });
    serde_json::to_string_pretty(&conf).expect("JSON")
}

/// Writes the conflist into `conf_dir` (created if missing); atomically, since
/// containerd watches the directory and could read a half-written file.
pub fn write_config(conf_dir: &Path, net: &Network) -> Result<PathBuf> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    std::fs::create_dir_all(conf_dir).map_err(io("cannot create", conf_dir))?;
    std::fs::create_dir_all(&net.ipam_dir).map_err(io("cannot create", &net.ipam_dir))?;
    let path = conf_dir.join(CONFLIST);
    let tmp = conf_dir.join(format!(".{CONFLIST}.tmp"));
    std::fs::write(&tmp, render(net)).map_err(io("cannot write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("cannot write", &path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_has_bridge_ipam_and_portmap() {
        let net = Network {
            bridge: "k8rs0".into(),
            subnet: "10.188.3.0/24".parse().unwrap(),
            ipam_dir: "/d/ipam".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&render(&net)).unwrap();
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["bridge"], "k8rs0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], true);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.188.3.0/24");
        assert_eq!(v["plugins"][1]["type"], "portmap");
    }
}
