//! Unit tests: parameter parsing per type, placeholders, the ExecutorInput, outputs read back,
//! cycles and refusals naming the task.

use super::dag::check;
use super::error::PipelineError;
use super::executor::*;
use super::spec::{self, ParameterType};
use serde_json::json;
use std::collections::BTreeMap;

const CHAIN: &str = r#"
components:
  comp-add:
    executorLabel: exec-add
    inputDefinitions:
      parameters:
        a: {parameterType: NUMBER_INTEGER}
        b: {parameterType: NUMBER_INTEGER, defaultValue: 2.0, isOptional: true}
    outputDefinitions:
      parameters:
        Output: {parameterType: NUMBER_INTEGER}
deploymentSpec:
  executors:
    exec-add:
      container:
        image: python:3.11
        command: [sh, -c, 'echo {{$.inputs.parameters[''a'']}}']
        args: [--executor_input, '{{$}}', '--out={{$.outputs.parameters[''Output''].output_file}}']
pipelineInfo: {name: chain}
root:
  dag:
    tasks:
      first:
        componentRef: {name: comp-add}
        inputs:
          parameters:
            a: {componentInputParameter: n}
        taskInfo: {name: first}
      second:
        componentRef: {name: comp-add}
        dependentTasks: [first]
        inputs:
          parameters:
            a:
              taskOutputParameter: {producerTask: first, outputParameterKey: Output}
            b:
              runtimeValue: {constant: 10}
        taskInfo: {name: second}
  inputDefinitions:
    parameters:
      n: {parameterType: NUMBER_INTEGER, defaultValue: 3.0, isOptional: true}
schemaVersion: 2.1.0
"#;

fn chain() -> spec::PipelineSpec {
    spec::parse(CHAIN).expect("parses")
}

#[test]
fn parameters_parse_per_declared_type() {
    assert_eq!(
        parse_text("42", ParameterType::NumberInteger),
        Ok(json!(42))
    );
    assert!(parse_text("4.5", ParameterType::NumberInteger).is_err());
    assert!(parse_text("x", ParameterType::NumberInteger).is_err());
    assert_eq!(
        parse_text("0.25", ParameterType::NumberDouble),
        Ok(json!(0.25))
    );
    assert_eq!(parse_text("3", ParameterType::NumberDouble), Ok(json!(3.0)));
    assert!(parse_text("nan", ParameterType::NumberDouble).is_err());
    assert_eq!(
        parse_text(" a b ", ParameterType::String),
        Ok(json!(" a b "))
    );
    assert_eq!(parse_text("True", ParameterType::Boolean), Ok(json!(true)));
    assert_eq!(
        parse_text("false", ParameterType::Boolean),
        Ok(json!(false))
    );
    assert!(parse_text("yes", ParameterType::Boolean).is_err());
    assert_eq!(
        parse_text("[1, \"a\"]", ParameterType::List),
        Ok(json!([1, "a"]))
    );
    assert!(parse_text("{\"a\": 1}", ParameterType::List).is_err());
    assert_eq!(
        parse_text("{\"a\": [1]}", ParameterType::Struct),
        Ok(json!({"a": [1]}))
    );
    assert!(parse_text("[1]", ParameterType::Struct).is_err());
    assert!(parse_text("[1", ParameterType::List).is_err());
}

#[test]
fn whole_doubles_become_integers() {
    // The compiler writes int defaults as 3.0.
    assert_eq!(
        coerce(&json!(3.0), ParameterType::NumberInteger),
        Ok(json!(3))
    );
    assert!(coerce(&json!(3.5), ParameterType::NumberInteger).is_err());
    assert!(coerce(&json!("3"), ParameterType::NumberInteger).is_err());
    assert_eq!(
        coerce(&json!(3), ParameterType::NumberDouble),
        Ok(json!(3.0))
    );
}

#[test]
fn pipeline_inputs_take_defaults_and_refuse_unknown_names() {
    let s = chain();
    let defs = &s.root.input_definitions.parameters;
    let v = pipeline_inputs(defs, &[]).expect("defaults");
    assert_eq!(v.get("n"), Some(&json!(3)));
    let v = pipeline_inputs(defs, &[("n".into(), "7".into())]).expect("given");
    assert_eq!(v.get("n"), Some(&json!(7)));
    let e = pipeline_inputs(defs, &[("m".into(), "7".into())]).expect_err("unknown");
    assert!(e.to_string().contains("parameter 'm'"), "{e}");
    let e = pipeline_inputs(defs, &[("n".into(), "x".into())]).expect_err("bad int");
    assert!(e.to_string().contains("parameter 'n'"), "{e}");
    assert!(split_assignment("novalue").is_err());
    assert_eq!(
        split_assignment("a=b=c").ok(),
        Some(("a".to_string(), "b=c".to_string()))
    );
}

#[test]
fn placeholders_are_substituted() {
    let s = chain();
    let t = s.components.get("comp-add").expect("component");
    let ins = TaskInputs {
        parameters: BTreeMap::from([("a".to_string(), json!(3)), ("s".to_string(), json!("x y"))]),
        artifacts: BTreeMap::new(),
    };
    let dir = std::path::Path::new("/runs/r1/first");
    let ei = executor_input(&t.output_definitions, &ins, dir);
    assert_eq!(ei["inputs"]["parameterValues"]["a"], json!(3));
    assert_eq!(
        ei["outputs"]["parameters"]["Output"]["outputFile"],
        json!("/runs/r1/first/Output")
    );
    assert_eq!(
        ei["outputs"]["outputFile"],
        json!("/runs/r1/first/executor_output.json")
    );
    let ctx = PlaceholderContext {
        task: "first",
        executor_input: &ei,
        job_name: "chain",
        job_resource_name: "chain-1",
        pipeline_root: "/runs",
    };
    assert_eq!(
        substitute("{{$}}", &ctx).ok(),
        Some(ei.to_string()),
        "the whole ExecutorInput"
    );
    assert_eq!(
        substitute(
            "a={{$.inputs.parameters['a']}}, s={{$.inputs.parameters['s']}}",
            &ctx
        )
        .ok(),
        Some("a=3, s=x y".to_string())
    );
    assert_eq!(
        substitute("{{$.outputs.parameters['Output'].output_file}}", &ctx).ok(),
        Some("/runs/r1/first/Output".to_string())
    );
    assert_eq!(
        substitute("{{$.pipeline_job_name}}/{{$.pipeline_task_name}}", &ctx).ok(),
        Some("chain/first".to_string())
    );
    let e = substitute("{{$.inputs.parameters['zz']}}", &ctx).expect_err("missing");
    assert!(
        e.to_string().starts_with("task 'first': placeholder"),
        "{e}"
    );
    let e = substitute("{{$.nope}}", &ctx).expect_err("unknown");
    assert!(e.to_string().contains("{{$.nope}}"), "{e}");
    let e = substitute("{\"IfPresent\": {}}", &ctx).expect_err("structured");
    assert!(matches!(e, PipelineError::Placeholder { .. }), "{e}");
    let if_present = |input: &str| {
        format!(
            "{{\"IfPresent\": {{\"InputName\": \"{input}\", \"Then\": [\"--a\", \
             \"{{{{$.inputs.parameters['a']}}}}\"], \"Else\": [\"--none\"]}}}}"
        )
    };
    assert_eq!(
        expand_arg(&if_present("a"), &ctx).ok(),
        Some(vec!["--a".to_string(), "3".to_string()])
    );
    assert_eq!(
        expand_arg(&if_present("zz"), &ctx).ok(),
        Some(vec!["--none".to_string()])
    );
    let concat = r#"{"Concat": ["a=", "{{$.inputs.parameters['a']}}", {"Concat": ["/", "x"]}]}"#;
    assert_eq!(
        expand_arg(concat, &ctx).ok(),
        Some(vec!["a=3/x".to_string()])
    );
    assert_eq!(expand_arg("plain", &ctx).ok(), Some(vec!["plain".into()]));
    assert!(expand_arg("{\"Concat\": [", &ctx).is_err());
    assert_eq!(substitute("plain", &ctx).ok(), Some("plain".to_string()));
}

#[test]
fn outputs_are_read_from_executor_output_or_files() {
    let s = chain();
    let t = s.components.get("comp-add").expect("component");
    let dir = tempfile::tempdir().expect("tempdir");
    let ei = executor_input(&t.output_definitions, &TaskInputs::default(), dir.path());
    let e =
        read_outputs("first", &t.output_definitions, &ei, dir.path()).expect_err("nothing written");
    assert!(
        e.to_string().contains("task 'first'") && e.to_string().contains("'Output'"),
        "{e}"
    );
    std::fs::write(dir.path().join("Output"), "7\n").expect("write");
    let o = read_outputs("first", &t.output_definitions, &ei, dir.path()).expect("file");
    assert_eq!(o.parameters.get("Output"), Some(&json!(7)));
    std::fs::write(
        dir.path().join(EXECUTOR_OUTPUT_FILE),
        r#"{"parameterValues": {"Output": 9.0}}"#,
    )
    .expect("write");
    let o = read_outputs("first", &t.output_definitions, &ei, dir.path()).expect("json");
    assert_eq!(o.parameters.get("Output"), Some(&json!(9)));
}

#[test]
fn cycle_is_reported_with_its_tasks() {
    let text = CHAIN.replace(
        "      first:\n        componentRef: {name: comp-add}\n",
        "      first:\n        componentRef: {name: comp-add}\n        dependentTasks: [second]\n",
    );
    let e = check(&spec::parse(&text).expect("parses")).expect_err("cycle");
    assert_eq!(
        e.to_string(),
        "dependency cycle between tasks 'first', 'second'"
    );
}

#[test]
fn unknown_executor_and_component_name_the_task() {
    let text = CHAIN.replace("executorLabel: exec-add", "executorLabel: exec-nope");
    let e = check(&spec::parse(&text).expect("parses")).expect_err("executor");
    assert!(
        e.to_string()
            .starts_with("task 'first': executor 'exec-nope' not found"),
        "{e}"
    );
    let text = CHAIN.replace("dependentTasks: [first]", "dependentTasks: [ghost]");
    let e = check(&spec::parse(&text).expect("parses")).expect_err("dep");
    assert_eq!(
        e.to_string(),
        "task 'second': depends on unknown task 'ghost'"
    );
}

#[test]
fn bad_control_flow_is_refused_by_task() {
    let cases = [
        (
            "artifactIterator: {itemInput: x, items: {inputArtifact: y}}",
            "task 'second': not supported yet: artifactIterator",
        ),
        (
            "triggerPolicy: {condition: \"inputs.parameter_values['a'] ==\"}",
            "task 'second': triggerPolicy.condition",
        ),
        (
            "triggerPolicy: {strategy: SOMETIMES}",
            "task 'second': triggerPolicy.strategy: unknown strategy \"SOMETIMES\"",
        ),
        (
            "parameterIterator: {itemInput: x, items: {raw: '[1,2]'}}",
            "task 'second': parameterIterator on component 'comp-add', which has no dag",
        ),
    ];
    for (field, want) in cases {
        let text = CHAIN.replace(
            "        dependentTasks: [first]\n",
            &format!("        dependentTasks: [first]\n        {field}\n"),
        );
        let e = check(&spec::parse(&text).expect("parses")).expect_err(field);
        assert!(e.to_string().starts_with(want), "{field}: {e}");
    }
    let text = CHAIN.replace(
        "componentInputParameter: n",
        "componentInputParameter: ghost",
    );
    let e = check(&spec::parse(&text).expect("parses")).expect_err("ghost");
    assert!(
        e.to_string()
            .contains("parameter 'ghost' is not an input of the enclosing DAG"),
        "{e}"
    );
    let text = CHAIN.replace("outputParameterKey: Output", "outputParameterKey: Nope");
    let e = check(&spec::parse(&text).expect("parses")).expect_err("output");
    assert_eq!(
        e.to_string(),
        "task 'second': input 'a': task 'first' has no output parameter 'Nope'"
    );
    // A platform-specific second document.
    let text = format!("{CHAIN}---\nplatforms: {{kubernetes: {{}}}}\n");
    let e = spec::parse(&text).expect_err("platform");
    assert!(e.to_string().contains("platform-specific"), "{e}");
    // Not a pipeline.
    assert!(spec::parse("a: 1").is_err());
}
