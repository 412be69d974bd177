//! The most important parts of upstream's `ValidatePodSpec` (containers, names,
//! images, ports, volumes, policies, resources), for pods and pod templates.

use std::collections::HashSet;

use serde_json::Value;

use crate::strategies::names::{check_at, dns1123_label, validate_template_meta};
use crate::strategies::quantity::nanos_of;
use crate::strategies::util::{items, one_of, str_at};
use crate::validation::{FieldError, FieldErrorType};

/// Upstream's `ValidatePodTemplateSpec` at `path` (`spec.template`).
pub fn validate_template(template: Option<&Value>, path: &str) -> Vec<FieldError> {
    let Some(t) = template.filter(|t| t.is_object()) else {
        return vec![FieldError::required(path, "")];
    };
    let mut errs = validate_template_meta(t, path);
    errs.extend(validate_pod_spec(
        t.get("spec").unwrap_or(&Value::Null),
        &format!("{path}.spec"),
    ));
    errs
}

/// Upstream's `ValidatePodSpec` (the parts that matter most) at `path`.
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(spec, path, &mut errs);
    let mut names = HashSet::new();
    if items(spec, "containers").is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    for key in ["initContainers", "containers"] {
        for (i, c) in items(spec, key).iter().enumerate() {
            let cpath = format!("{path}.{key}[{i}]");
            validate_container(c, &cpath, &volumes, &mut names, &mut errs);
        }
    }
    one_of(
        spec,
        "restartPolicy",
        &format!("{path}.restartPolicy"),
        &["Always", "Never", "OnFailure"],
        &mut errs,
    );
    one_of(
        spec,
        "dnsPolicy",
        &format!("{path}.dnsPolicy"),
        &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        &mut errs,
    );
    if let Some(n) = spec["activeDeadlineSeconds"].as_i64()
        && !(1..=i64::from(i32::MAX)).contains(&n)
    {
        errs.push(FieldError::invalid(
            format!("{path}.activeDeadlineSeconds"),
            n,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    errs
}

/// Volume names: required, DNS labels, unique. Returns the names.
fn validate_volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in items(spec, "volumes").iter().enumerate() {
        let vpath = format!("{path}.volumes[{i}].name");
        let name = str_at(v, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&vpath, ""));
            continue;
        }
        check_at(&vpath, name, dns1123_label(name), errs);
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&vpath, name));
        }
    }
    names
}

fn validate_container(
    c: &Value,
    path: &str,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let name = str_at(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        check_at(&format!("{path}.name"), name, dns1123_label(name), errs);
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), name));
        }
    }
    if str_at(c, "image").is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    one_of(
        c,
        "imagePullPolicy",
        &format!("{path}.imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
        errs,
    );
    one_of(
        c,
        "terminationMessagePolicy",
        &format!("{path}.terminationMessagePolicy"),
        &["FallbackToLogsOnError", "File"],
        errs,
    );
    let mut port_names = HashSet::new();
    for (i, p) in items(c, "ports").iter().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        let port_name = str_at(p, "name");
        if !port_name.is_empty() && !port_names.insert(port_name.to_string()) {
            errs.push(FieldError::duplicate(format!("{ppath}.name"), port_name));
        }
        match p.get("containerPort").and_then(Value::as_i64) {
            None => errs.push(FieldError::required(format!("{ppath}.containerPort"), "")),
            Some(n) => port_range(n, &format!("{ppath}.containerPort"), errs),
        }
        if let Some(h) = p.get("hostPort").and_then(Value::as_i64)
            && h != 0
        {
            port_range(h, &format!("{ppath}.hostPort"), errs);
        }
        one_of(
            p,
            "protocol",
            &format!("{ppath}.protocol"),
            &["SCTP", "TCP", "UDP"],
            errs,
        );
    }
    for (i, m) in items(c, "volumeMounts").iter().enumerate() {
        let mpath = format!("{path}.volumeMounts[{i}]");
        let vname = str_at(m, "name");
        if vname.is_empty() {
            errs.push(FieldError::required(format!("{mpath}.name"), ""));
        } else if !volumes.contains(vname) {
            errs.push(FieldError::new(
                FieldErrorType::NotFound,
                format!("{mpath}.name"),
                Some(Value::String(vname.to_string())),
                "",
            ));
        }
        if str_at(m, "mountPath").is_empty() {
            errs.push(FieldError::required(format!("{mpath}.mountPath"), ""));
        }
    }
    validate_resources(c.get("resources"), &format!("{path}.resources"), errs);
}

/// `must be between 1 and 65535, inclusive`
pub fn port_range(n: i64, path: &str, errs: &mut Vec<FieldError>) {
    if !(1..=65535).contains(&n) {
        errs.push(FieldError::invalid(
            path,
            n,
            "must be between 1 and 65535, inclusive",
        ));
    }
}

/// Quantities parse, none is negative, and no request exceeds its limit.
fn validate_resources(res: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(res) = res else { return };
    for kind in ["limits", "requests"] {
        for (k, v) in res
            .get(kind)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let p = format!("{path}.{kind}[{k}]");
            match nanos_of(v) {
                None => errs.push(FieldError::invalid(
                    p,
                    v.clone(),
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )),
                Some(n) if n < 0 => errs.push(FieldError::invalid(
                    p,
                    v.clone(),
                    "must be greater than or equal to 0",
                )),
                _ => {}
            }
        }
    }
    let limits = res.get("limits").and_then(Value::as_object);
    for (k, req) in res
        .get("requests")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(limit) = limits.and_then(|l| l.get(k)) else {
            continue;
        };
        if let (Some(r), Some(l)) = (nanos_of(req), nanos_of(limit))
            && r > l
        {
            let limit_text = limit
                .as_str()
                .map_or_else(|| limit.to_string(), str::to_string);
            errs.push(FieldError::invalid(
                format!("{path}.requests[{k}]"),
                req.clone(),
                format!("must be less than or equal to {k} limit of {limit_text}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(spec: Value) -> Vec<String> {
        validate_pod_spec(&spec, "spec")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn containers_are_required() {
        assert_eq!(messages(json!({})), ["spec.containers: Required value"]);
    }

    #[test]
    fn container_errors_read_like_upstream() {
        let errs = messages(json!({
            "restartPolicy": "Sometimes",
            "containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 0}]},
                {"name": "a"},
                {"name": "B_b", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            ],
        }));
        assert!(errs.contains(&"spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive".to_string()), "{errs:?}");
        assert!(errs.contains(&r#"spec.containers[1].name: Duplicate value: "a""#.to_string()));
        assert!(errs.contains(&"spec.containers[1].image: Required value".to_string()));
        assert!(errs.iter().any(|e| e.starts_with(
            r#"spec.containers[2].name: Invalid value: "B_b": a lowercase RFC 1123 label"#
        )));
        assert!(
            errs.contains(
                &r#"spec.containers[2].volumeMounts[0].name: Not found: "v""#.to_string()
            )
        );
        assert!(errs.contains(&r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure""#.to_string()));
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let errs = messages(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}}]}));
        assert_eq!(
            errs,
            [
                r#"spec.containers[0].resources.requests[cpu]: Invalid value: "1": must be less than or equal to cpu limit of 500m"#
            ]
        );
    }
}
