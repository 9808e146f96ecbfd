//! Completion on the schema of a real QEMU.

use std::sync::Arc;

use super::complete::{complete, hint, CompletionData};
use super::schema_tests::schema;

fn data() -> CompletionData {
    CompletionData { schema: Some(Arc::new(schema().clone())), ..Default::default() }
}

/// The start offset and the replacements offered for `line` (cursor at its end).
fn offers(data: &CompletionData, line: &str) -> (usize, Vec<String>) {
    let (start, pairs) = complete(data, line);
    (start, pairs.into_iter().map(|p| p.replacement).collect())
}

#[test]
fn command_names() {
    let d = data();
    assert_eq!(offers(&d, "query-statu"), (0, vec!["query-status ".to_string()]));
    assert_eq!(offers(&d, "query-stat").1, ["query-stats ", "query-stats-schemas ", "query-status "]);
    let (_, all) = offers(&d, "");
    assert!(
        all.len() > 150 && all.contains(&"help ".to_string()) && all.contains(&"transaction( ".to_string())
    );
    assert_eq!(offers(&d, "  block-dirty-bitmap-a"), (2, vec!["block-dirty-bitmap-add ".to_string()]));
    assert_eq!(offers(&d, "!query-statu"), (1, vec!["query-status ".to_string()]));
    assert_eq!(offers(&d, "help query-statu"), (5, vec!["query-status".to_string()]));
}

#[test]
fn argument_names_skip_those_given() {
    let d = data();
    let line = "block-dirty-bitmap-add node=n0 ";
    let (start, all) = offers(&d, line);
    assert_eq!(start, line.len());
    assert_eq!(all, ["name=", "granularity=", "persistent=", "disabled="]);
    assert_eq!(offers(&d, "block-dirty-bitmap-add gra").1, ["granularity="]);
}

#[test]
fn nested_argument_names_after_a_dot() {
    let d = data();
    // blockdev-add driver=qcow2 file.<TAB>: the members of the object branch of `file`.
    let line = "blockdev-add driver=qcow2 file.dri";
    let (start, all) = offers(&d, line);
    assert_eq!(start, line.len() - 3);
    assert_eq!(all, ["driver="]);
    let (_, all) = offers(&d, "blockdev-add driver=qcow2 fi");
    assert_eq!(all, ["file."]);
    // The chosen union variant narrows members: `filename` only exists for file-like drivers.
    assert!(offers(&d, "blockdev-add driver=file file").1.contains(&"filename=".to_string()));
    assert!(!offers(&d, "blockdev-add driver=qcow2 file").1.contains(&"filename=".to_string()));
}

#[test]
fn enum_and_bool_values() {
    let d = data();
    let line = "blockdev-add driver=qco";
    let (start, all) = offers(&d, line);
    assert_eq!(start, "blockdev-add driver=".len());
    assert_eq!(all, ["qcow ", "qcow2 "]);
    assert_eq!(offers(&d, "blockdev-add driver=qcow2 file.driver=fil").1, ["file "]);
    assert_eq!(offers(&d, "block-dirty-bitmap-add persistent=").1, ["true ", "false "]);
    assert!(offers(&d, "block-dirty-bitmap-add node=").1.is_empty());
}

#[test]
fn transaction_actions_and_their_arguments() {
    let d = data();
    let (_, all) = offers(&d, "transaction( block-dirty-bitmap-a");
    assert_eq!(all, ["block-dirty-bitmap-add "]);
    assert_eq!(offers(&d, "transaction( abort ; block-dirty-bitmap-add no").1, ["node="]);
    let mut d = data();
    d.in_transaction = true;
    assert_eq!(offers(&d, "block-dirty-bitmap-cl").1, ["block-dirty-bitmap-clear "]);
    assert_eq!(offers(&d, "block-dirty-bitmap-clear node=x na").1, ["name="]);
}

#[test]
fn quoted_values_do_not_split_words() {
    let d = data();
    assert_eq!(offers(&d, "block-dirty-bitmap-add node=\"a b\" na").1, ["name="]);
}

#[test]
fn hmp_mode_completes_whole_lines() {
    let d = CompletionData {
        hmp: Some(vec!["info version".into(), "info status".into(), "stop".into()]),
        ..Default::default()
    };
    assert_eq!(offers(&d, "info v"), (0, vec!["info version".to_string()]));
    assert_eq!(offers(&d, " st").1, ["stop"]);
}

#[test]
fn no_schema_no_candidates() {
    assert_eq!(offers(&CompletionData::default(), "query").1, Vec::<String>::new());
}

#[test]
fn hints_name_the_required_arguments_left() {
    let d = data();
    assert_eq!(hint(&d, "block-dirty-bitmap-add ").as_deref(), Some("node=<string> name=<string>"));
    assert_eq!(hint(&d, "block-dirty-bitmap-add node=n0 ").as_deref(), Some("name=<string>"));
    assert_eq!(hint(&d, "block-dirty-bitmap-add node=n0 name=b "), None);
    assert_eq!(hint(&d, "block-dirty-bitmap-add"), None);
    assert_eq!(hint(&d, "query-status "), None);
    assert_eq!(hint(&d, "nope "), None);
}

/// An agent with these commands enabled, described by the agent's generated schema.
fn agent_data(enabled: &[&str]) -> CompletionData {
    let mut commands: Vec<qmp::ga::CommandState> = enabled
        .iter()
        .map(|n| qmp::ga::CommandState { name: n.to_string(), enabled: true, success_response: true })
        .collect();
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    let info = qmp::ga::AgentInfo { version: "7.2.22".into(), commands };
    CompletionData {
        schema: Some(Arc::new(super::ga_schema::for_agent(&info))),
        agent_commands: Some(enabled.iter().map(|n| n.to_string()).collect()),
        ..Default::default()
    }
}

#[test]
fn agent_commands_complete_to_full_names_from_short_ones() {
    let d = agent_data(&["guest-exec", "guest-get-osinfo", "guest-get-time", "guest-ping"]);
    assert_eq!(offers(&d, "guest-get-o"), (0, vec!["guest-get-osinfo ".to_string()]));
    assert_eq!(offers(&d, "get-o"), (0, vec!["guest-get-osinfo ".to_string()]));
    assert_eq!(offers(&d, "get-").1, ["guest-get-osinfo ", "guest-get-time "]);
    assert_eq!(offers(&d, "!pi"), (1, vec!["guest-ping ".to_string()]));
    assert_eq!(offers(&d, "help pi"), (5, vec!["guest-ping".to_string()]));
    // Only the agent's own commands, and no transaction.
    let (_, all) = offers(&d, "");
    assert_eq!(all, ["guest-exec ", "guest-get-osinfo ", "guest-get-time ", "guest-ping ", "help "]);
    assert!(offers(&d, "guest-shut").1.is_empty());
}

#[test]
fn agent_arguments_complete_from_its_schema() {
    let d = agent_data(&["guest-exec"]);
    assert_eq!(offers(&d, "guest-exec pa").1, ["path="]);
    assert_eq!(offers(&d, "exec path=/bin/true ").1, ["arg=", "env=", "input-data=", "capture-output="]);
    assert_eq!(offers(&d, "exec capture-output=t").1, ["true "]);
    assert_eq!(hint(&d, "exec ").as_deref(), Some("path=<string>"));
}
