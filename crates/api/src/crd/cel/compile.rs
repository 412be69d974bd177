//! Compiling one `x-kubernetes-validations` entry: the rule and its
//! messageExpression parsed once, statically checked (`check.rs`), with upstream's
//! error details (`compilation failed: ERROR: <input>:1:6: undefined field 'x'`).

use cel::Program;
use cel::common::ast::IdedExpr;
use serde_json::Value;

use super::check::{self, Issue};
use super::estimate::{estimate, exceeded};
use super::functions::ENV;
use super::library::cost::instrument;
use super::library::two_var::lower;
use crate::crd::schema::{additional_schema, properties};

/// One compiled rule.
pub struct Rule {
    /// The rule's source, trimmed (upstream's `ruleErrorString`).
    pub source: String,
    pub message: String,
    /// The rule, instrumented to charge the cost budget (`library/cost.rs`).
    pub program: Result<IdedExpr, String>,
    /// The messageExpression's source, and the expression.
    pub message_expression: Option<(String, IdedExpr)>,
    /// Upstream's `reason`: FieldValueInvalid (unset), Forbidden, Required, Duplicate.
    pub reason: Option<String>,
    /// The `fieldPath`, resolved against the schema (`spec.replicas`, `labels[a]`).
    pub field_path: Option<String>,
    pub uses_old_self: bool,
    pub optional_old_self: bool,
}

/// The errors one rule can have, each with the field (relative to the rule entry)
/// they belong to.
pub struct RuleErrors {
    pub rule: Option<String>,
    pub message_expression: Option<String>,
    pub optional_old_self: bool,
    /// The rule's estimated cost is past upstream's limit: the message.
    pub rule_cost: Option<String>,
    pub message_expression_cost: Option<String>,
}

pub fn compile(schema: &Value, root: bool, entry: &Value) -> (Rule, RuleErrors) {
    let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
    let source = text("rule").trim().to_string();
    let optional_old_self = entry.get("optionalOldSelf").and_then(Value::as_bool) == Some(true);
    let program = compile_expr(&source, schema, root).and_then(|(p, t)| {
        if check::may_be_bool(t) {
            Ok(p)
        } else {
            Err("cel expression must evaluate to a bool".to_string())
        }
    });
    let uses_old_self = program
        .as_ref()
        .is_ok_and(|p| check::uses_old_self(p.expression()));
    let too_costly =
        |what: &str, p: &Program| exceeded(what, estimate(p.expression(), schema, root));
    let rule_cost = program.as_ref().ok().and_then(|p| too_costly("rule", p));
    let program = program.map(|p| runnable(&p));
    let mut message_expression_cost = None;
    let (message_expression, msg_err) = match text("messageExpression").trim() {
        "" => (None, None),
        src => match compile_expr(src, schema, root) {
            Ok((p, _)) => {
                message_expression_cost = too_costly("messageExpression", &p);
                (Some((src.to_string(), runnable(&p))), None)
            }
            Err(e) => (None, Some(format!("messageExpression {e}"))),
        },
    };
    let errors = RuleErrors {
        rule: program.as_ref().err().cloned(),
        message_expression: msg_err,
        optional_old_self: entry.get("optionalOldSelf").is_some_and(|v| !v.is_null())
            && !uses_old_self,
        rule_cost,
        message_expression_cost,
    };
    let field_path = match text("fieldPath") {
        "" => None,
        p => resolve_field_path(schema, p).ok(),
    };
    let rule = Rule {
        source,
        message: text("message").trim().to_string(),
        program,
        message_expression,
        reason: entry
            .get("reason")
            .and_then(Value::as_str)
            .map(str::to_string),
        field_path,
        uses_old_self,
        optional_old_self,
    };
    (rule, errors)
}

/// What runs: the checked expression, charging the cost budget, in the
/// interpreter's one-variable comprehensions (`library/two_var.rs`).
fn runnable(p: &Program) -> IdedExpr {
    lower(instrument(p.expression()))
}

/// Parses and checks one expression; the error is upstream's detail.
fn compile_expr<'a>(
    src: &str,
    schema: &'a Value,
    root: bool,
) -> Result<(Program, check::Ty<'a>), String> {
    let program = ENV.compile(src).map_err(|e| {
        format!(
            "compilation failed: {}",
            e.to_string().replace("\n| ", "\n | ")
        )
    })?;
    let t = check::check(program.expression(), schema, root)
        .map_err(|i| format!("compilation failed: {}", located(src, &program, &i)))?;
    Ok((program, t))
}

/// cel-go's issue format: `ERROR: <input>:1:6: msg`, then the line and a caret.
fn located(src: &str, program: &Program, issue: &Issue) -> String {
    let offset = program
        .source_info()
        .offset_for(issue.id)
        .map_or(0, |(start, _)| start as usize);
    let (mut line, mut col) = (1, 0);
    let mut line_text = src.lines().next().unwrap_or_default();
    let mut seen = 0;
    for l in src.split_inclusive('\n') {
        let len = l.chars().count();
        if offset < seen + len {
            col = offset - seen;
            line_text = l.trim_end_matches('\n');
            break;
        }
        seen += len;
        line += 1;
    }
    format!(
        "ERROR: <input>:{line}:{}: {}\n | {line_text}\n | {}^",
        col + 1,
        issue.msg,
        ".".repeat(col)
    )
}

/// Resolves a rule's `fieldPath` (`.spec.replicas`, `.labels['a.b']`) against the
/// schema it is declared on, as upstream's `ValidFieldPath` does: named properties
/// become `.name`, additionalProperties keys `[key]`.
pub fn resolve_field_path(schema: &Value, path: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut s = schema;
    let mut rest = path;
    while !rest.is_empty() {
        let (name, tail) = if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or("unexpected end of JSON path")?;
            (
                r[..end].replace("\\'", "'").replace("\\\\", "\\"),
                &r[end + 2..],
            )
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("unexpected end of JSON path".into());
            }
            (r[..end].to_string(), &r[end..])
        } else {
            return Err(format!("expected [ or . but got: {rest}"));
        };
        if let Some(props) = properties(s) {
            s = props.get(&name).ok_or("does not refer to a valid field")?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&name);
        } else if let Some(a) = additional_schema(s) {
            s = a;
            out.push_str(&format!("[{name}]"));
        } else {
            return Err("does not refer to a valid field".into());
        }
        rest = tail;
    }
    Ok(out)
}
