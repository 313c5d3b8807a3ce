//! CEL as KFP's compiler writes it: `triggerPolicy.condition` (dsl.If/Elif/Else), evaluated on
//! the task's input parameters as `inputs.parameter_values['name']`, and
//! `parameterExpressionSelector` (a field of a ParallelFor item, `parseJson(string_value)["a"]`),
//! evaluated on one value as `string_value`, `number_value`, `bool_value`, `list_value` or
//! `struct_value`.

use cel::{Context, Program, Value as CelValue};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// JSON as CEL values; whole numbers as `int` (as cel-go reads protobuf numbers compared with
/// int literals), others as `double`.
fn to_cel(v: &Value) -> Result<CelValue, String> {
    Ok(match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(f)) => CelValue::Float(f),
            _ => return Err(format!("number {n} cannot be given to CEL")),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(
            items.iter().map(to_cel).collect::<Result<Vec<_>, _>>()?,
        )),
        Value::Object(m) => {
            let mut map = std::collections::HashMap::new();
            for (k, v) in m {
                map.insert(cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)?);
            }
            CelValue::Map(cel::objects::Map { map: Arc::new(map) })
        }
    })
}

fn run(expr: &str, context: &Context) -> Result<Value, String> {
    let program = Program::compile(expr).map_err(|e| format!("CEL {expr:?}: {e}"))?;
    let out = program
        .execute(context)
        .map_err(|e| format!("CEL {expr:?}: {e}"))?;
    out.json()
        .map_err(|e| format!("CEL {expr:?}: result not JSON: {e}"))
}

fn parse_json(s: Arc<String>) -> Result<CelValue, cel::ExecutionError> {
    let v: Value = serde_json::from_str(&s)
        .map_err(|e| cel::ExecutionError::function_error("parseJson", e.to_string()))?;
    to_cel(&v).map_err(|e| cel::ExecutionError::function_error("parseJson", e))
}

/// Evaluates a trigger condition on the task's resolved input parameters.
pub fn condition(expr: &str, parameters: &BTreeMap<String, Value>) -> Result<bool, String> {
    let mut context = Context::default();
    let inputs = to_cel(&json!({ "parameter_values": parameters }))?;
    context.add_variable_from_value("inputs", inputs);
    match run(expr, &context)? {
        Value::Bool(b) => Ok(b),
        other => Err(format!("CEL {expr:?}: expected true or false, got {other}")),
    }
}

/// Applies a `parameterExpressionSelector` to `value`.
pub fn select(value: &Value, selector: &str) -> Result<Value, String> {
    let mut context = Context::default();
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    context.add_variable_from_value("string_value", CelValue::String(Arc::new(text)));
    let kind = match value {
        Value::Number(_) => Some("number_value"),
        Value::Bool(_) => Some("bool_value"),
        Value::Array(_) => Some("list_value"),
        Value::Object(_) => Some("struct_value"),
        _ => None,
    };
    if let Some(kind) = kind {
        context.add_variable_from_value(kind, to_cel(value)?);
    }
    context
        .add_function("parseJson", parse_json)
        .map_err(|e| format!("CEL: {e}"))?;
    run(selector, &context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn compiled_conditions_evaluate() {
        let p = params(&[("pipelinechannel--num-Output", json!(3))]);
        let gt = "int(inputs.parameter_values['pipelinechannel--num-Output']) > 5";
        assert_eq!(condition(gt, &p), Ok(false));
        let elif = "!(int(inputs.parameter_values['pipelinechannel--num-Output']) > 5) && \
                    int(inputs.parameter_values['pipelinechannel--num-Output']) == 3";
        assert_eq!(condition(elif, &p), Ok(true));
        let s = params(&[("c", json!("heads"))]);
        assert_eq!(
            condition("inputs.parameter_values['c'] == 'heads'", &s),
            Ok(true)
        );
        let d = params(&[("x", json!(0.25))]);
        assert_eq!(
            condition("double(inputs.parameter_values['x']) < 0.5", &d),
            Ok(true)
        );
        let b = params(&[("flag", json!(true))]);
        assert_eq!(
            condition("inputs.parameter_values['flag'] == true", &b),
            Ok(true)
        );
    }

    #[test]
    fn bad_conditions_say_why() {
        let p = params(&[("x", json!(1))]);
        let e = condition("inputs.parameter_values['x'] +", &p).expect_err("syntax");
        assert!(e.contains("CEL"), "{e}");
        assert_eq!(condition("inputs.parameter_values['x'] == 1", &p), Ok(true));
        let e = condition("inputs.parameter_values['x'] + 1", &p).expect_err("not bool");
        assert!(e.contains("expected true or false"), "{e}");
        let e = condition("inputs.parameter_values['nope'] == 1", &p).expect_err("missing");
        assert!(e.contains("CEL"), "{e}");
    }

    #[test]
    fn selectors_pick_struct_fields() {
        let item = json!({"a": 1, "b": "x"});
        assert_eq!(
            select(&item, "parseJson(string_value)[\"a\"]"),
            Ok(json!(1))
        );
        assert_eq!(
            select(&item, "parseJson(string_value)[\"b\"]"),
            Ok(json!("x"))
        );
        assert_eq!(select(&item, "struct_value.b"), Ok(json!("x")));
        let as_text = json!("{\"a\": [1, 2]}");
        assert_eq!(
            select(&as_text, "parseJson(string_value)[\"a\"]"),
            Ok(json!([1, 2]))
        );
        assert!(select(&json!("not json"), "parseJson(string_value)[\"a\"]").is_err());
    }
}
