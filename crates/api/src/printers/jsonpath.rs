//! The part of kubectl's JSONPath that CRD printer columns and selectable fields use:
//! `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[*]`, `.*`, `..a`, and filters such as
//! `[?(@.type=="Ready")]`. Missing keys yield no result rather than an error, as
//! upstream evaluates these paths with `AllowMissingKeys(true)`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid JSONPath {path:?}: {reason}")]
pub struct JsonPathError {
    pub path: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Index(i64),
    /// `..`: the node and everything under it.
    Descend,
    Filter(Filter),
}

#[derive(Clone, Debug, PartialEq)]
struct Filter {
    /// Path relative to `@`.
    left: Vec<Step>,
    /// None: the left side merely has to exist.
    compare: Option<(CmpOp, Value)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses `.status.replicas`, also accepted wrapped in `{}` or led by `$`.
    pub fn parse(path: &str) -> Result<Self, JsonPathError> {
        let err = |reason: &str| JsonPathError {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let mut s = path.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            s = inner.trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let chars: Vec<char> = s.chars().collect();
        let (steps, end) = parse_steps(&chars, 0).map_err(|r| err(&r))?;
        if end != chars.len() {
            return Err(err(&format!("unexpected {:?}", chars[end])));
        }
        Ok(Self { steps })
    }

    /// Every value the path reaches, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, vec![root])
    }

    /// The first value the path reaches.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.find(root).into_iter().next()
    }
}

fn is_terminator(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}' | '(' | ')')
        || matches!(c, '=' | '!' | '<' | '>')
}

/// Steps from `i` until a character that cannot continue a path.
fn parse_steps(c: &[char], mut i: usize) -> Result<(Vec<Step>, usize), String> {
    let mut steps = Vec::new();
    while i < c.len() {
        match c[i] {
            '.' if c.get(i + 1) == Some(&'.') => {
                steps.push(Step::Descend);
                i += 2;
                i = field(c, i, &mut steps);
            }
            '.' => {
                i = field(c, i + 1, &mut steps);
            }
            '[' => {
                let (step, next) = bracket(c, i + 1)?;
                steps.push(step);
                i = next;
            }
            _ => break,
        }
    }
    Ok((steps, i))
}

/// A field name after `.`, with backslash escapes (`app\.kubernetes\.io`).
fn field(c: &[char], mut i: usize, steps: &mut Vec<Step>) -> usize {
    let mut name = String::new();
    while i < c.len() {
        if c[i] == '\\' && i + 1 < c.len() {
            name.push(c[i + 1]);
            i += 2;
            continue;
        }
        if is_terminator(c[i]) {
            break;
        }
        name.push(c[i]);
        i += 1;
    }
    match name.as_str() {
        "" => {}
        "*" => steps.push(Step::Wildcard),
        _ => steps.push(Step::Field(name)),
    }
    i
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

/// A quoted string starting at `i` (on the quote); returns it and the index after.
fn quoted(c: &[char], i: usize) -> Result<(String, usize), String> {
    let q = c[i];
    let mut out = String::new();
    let mut j = i + 1;
    while j < c.len() {
        match c[j] {
            '\\' if j + 1 < c.len() => {
                out.push(c[j + 1]);
                j += 2;
            }
            ch if ch == q => return Ok((out, j + 1)),
            ch => {
                out.push(ch);
                j += 1;
            }
        }
    }
    Err("unterminated quoted string".to_string())
}

/// The inside of `[...]`, starting after the `[`.
fn bracket(c: &[char], i: usize) -> Result<(Step, usize), String> {
    let i = skip_ws(c, i);
    let close = |j: usize| -> Result<usize, String> {
        let j = skip_ws(c, j);
        if c.get(j) == Some(&']') {
            Ok(j + 1)
        } else {
            Err("expected ']'".to_string())
        }
    };
    match c.get(i) {
        Some('*') => Ok((Step::Wildcard, close(i + 1)?)),
        Some('\'') | Some('"') => {
            let (name, j) = quoted(c, i)?;
            Ok((Step::Field(name), close(j)?))
        }
        Some('?') => {
            let j = skip_ws(c, i + 1);
            if c.get(j) != Some(&'(') {
                return Err("expected '(' after '?'".to_string());
            }
            let (f, j) = filter(c, j + 1)?;
            let j = skip_ws(c, j);
            if c.get(j) != Some(&')') {
                return Err("expected ')' to close the filter".to_string());
            }
            Ok((Step::Filter(f), close(j + 1)?))
        }
        Some(ch) if ch.is_ascii_digit() || *ch == '-' => {
            let mut j = i + 1;
            while j < c.len() && c[j].is_ascii_digit() {
                j += 1;
            }
            let text: String = c[i..j].iter().collect();
            let n = text.parse().map_err(|_| format!("bad index {text:?}"))?;
            Ok((Step::Index(n), close(j)?))
        }
        _ => Err("unsupported bracket expression".to_string()),
    }
}

/// `@.path [op literal]`, starting after the `(`.
fn filter(c: &[char], i: usize) -> Result<(Filter, usize), String> {
    let i = skip_ws(c, i);
    if c.get(i) != Some(&'@') {
        return Err("a filter must start with '@'".to_string());
    }
    let (left, j) = parse_steps(c, i + 1)?;
    let j = skip_ws(c, j);
    let two: String = c[j..c.len().min(j + 2)].iter().collect();
    let (op, len) = match two.as_str() {
        "==" => (CmpOp::Eq, 2),
        "!=" => (CmpOp::Ne, 2),
        "<=" => (CmpOp::Le, 2),
        ">=" => (CmpOp::Ge, 2),
        _ => match c.get(j) {
            Some('<') => (CmpOp::Lt, 1),
            Some('>') => (CmpOp::Gt, 1),
            _ => {
                return Ok((
                    Filter {
                        left,
                        compare: None,
                    },
                    j,
                ));
            }
        },
    };
    let k = skip_ws(c, j + len);
    let (literal, end) = match c.get(k) {
        Some('\'') | Some('"') => {
            let (s, e) = quoted(c, k)?;
            (Value::String(s), e)
        }
        Some(_) => {
            let mut e = k;
            while e < c.len() && !c[e].is_whitespace() && c[e] != ')' {
                e += 1;
            }
            let text: String = c[k..e].iter().collect();
            let v = match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                t => serde_json::from_str::<serde_json::Number>(t)
                    .map(Value::Number)
                    .map_err(|_| format!("bad literal {t:?}"))?,
            };
            (v, e)
        }
        None => return Err("missing right side of comparison".to_string()),
    };
    Ok((
        Filter {
            left,
            compare: Some((op, literal)),
        },
        end,
    ))
}

fn eval<'a>(steps: &[Step], mut nodes: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for n in nodes {
            match step {
                Step::Field(name) => next.extend(n.get(name.as_str())),
                Step::Wildcard => match n {
                    Value::Array(a) => next.extend(a.iter()),
                    // kubectl walks map values in key order.
                    Value::Object(o) => {
                        let mut keys: Vec<&String> = o.keys().collect();
                        keys.sort();
                        next.extend(keys.into_iter().map(|k| &o[k]));
                    }
                    _ => {}
                },
                Step::Index(i) => {
                    if let Value::Array(a) = n {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)));
                    }
                }
                Step::Descend => descend(n, &mut next),
                Step::Filter(f) => {
                    if let Value::Array(a) = n {
                        next.extend(a.iter().filter(|item| f.accepts(item)));
                    }
                }
            }
        }
        nodes = next;
    }
    nodes
}

fn descend<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Array(a) => a.iter().for_each(|x| descend(x, out)),
        Value::Object(o) => o.values().for_each(|x| descend(x, out)),
        _ => {}
    }
}

impl Filter {
    fn accepts(&self, item: &Value) -> bool {
        let found = eval(&self.left, vec![item]);
        let Some((op, right)) = &self.compare else {
            return !found.is_empty();
        };
        let Some(left) = found.first() else {
            return false;
        };
        let ord = match (left, right) {
            (Value::String(a), Value::String(b)) => a.partial_cmp(b),
            (Value::Number(a), Value::Number(b)) => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
            (Value::Bool(a), Value::Bool(b)) => a.partial_cmp(b),
            _ => None,
        };
        use std::cmp::Ordering::*;
        match (op, ord) {
            (CmpOp::Ne, None) => true,
            (_, None) => false,
            (CmpOp::Eq, Some(o)) => o == Equal,
            (CmpOp::Ne, Some(o)) => o != Equal,
            (CmpOp::Lt, Some(o)) => o == Less,
            (CmpOp::Le, Some(o)) => o != Greater,
            (CmpOp::Gt, Some(o)) => o == Greater,
            (CmpOp::Ge, Some(o)) => o != Less,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_values() {
        let obj = json!({
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "containers": [{"name": "a", "image": "i1"}, {"name": "b", "image": "i2"}]},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}
        });
        // (path, first result)
        let cases = [
            (".spec.replicas", Some(json!(3))),
            ("{.metadata.name}", Some(json!("x"))),
            ("$.metadata.name", Some(json!("x"))),
            (".spec.containers[1].image", Some(json!("i2"))),
            (".spec.containers[-1].name", Some(json!("b"))),
            (".spec.containers[*].name", Some(json!("a"))),
            (".spec.containers[5].name", None),
            (".spec.missing.deeper", None),
            (
                r#".status.conditions[?(@.type=="Ready")].status"#,
                Some(json!("False")),
            ),
            (
                ".status.conditions[?(@.type == 'Progressing')].status",
                Some(json!("True")),
            ),
            (
                ".status.conditions[?(@.type!=\"Progressing\")].type",
                Some(json!("Ready")),
            ),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                Some(json!("web")),
            ),
            (
                r".metadata.labels.app\.kubernetes\.io/name",
                Some(json!("web")),
            ),
            ("..image", Some(json!("i1"))),
            (".spec.containers[?(@.image)].name", Some(json!("a"))),
        ];
        for (path, want) in cases {
            let p = JsonPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.first(&obj).cloned(), want, "{path}");
        }
        let all = JsonPath::parse(".spec.containers[*].image").unwrap();
        assert_eq!(all.find(&obj), [&json!("i1"), &json!("i2")]);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [".a[", ".a[?(x)]", ".a['b", ".a b", ".a[1:2]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }
}
