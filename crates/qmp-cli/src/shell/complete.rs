//! Tab completion: command names, argument names (nested ones after `.`), enum values, and
//! transaction actions, all from the live schema; in HMP mode, QEMU's own `help` list. On the
//! guest agent: its enabled commands (`guest-` may be left out when typing), and arguments from
//! the agent's generated schema.

use std::sync::{Arc, Mutex};

use qmp::schema::Type;
use qmp::Schema;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use serde_json::{Map, Value};

use super::parse::parse_key_values;
use super::schema;

/// What completion draws on; the REPL updates it as the session goes.
#[derive(Debug, Default)]
pub struct CompletionData {
    /// The live schema, once loaded.
    pub schema: Option<Arc<Schema>>,
    /// HMP mode: the whole-line candidates (`info version`, `help info`, `stop`, ...).
    pub hmp: Option<Vec<String>>,
    /// On the guest agent: its enabled commands, offered instead of the schema's (which
    /// describes every agent command, not this agent's). The agent has no transactions.
    pub agent_commands: Option<Vec<String>>,
    /// Whether the line being typed is inside a multi-line transaction.
    pub in_transaction: bool,
}

/// The rustyline helper: completion, and a dim hint naming the required arguments left.
#[derive(Debug, Clone, Default)]
pub struct ShellHelper {
    /// Shared with the REPL, which fills it in.
    pub data: Arc<Mutex<CompletionData>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        // A poisoned lock only means a panic elsewhere; completion still reads consistent data.
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        Ok(complete(&data, &line[..pos]))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        hint(&data, line)
    }
}

impl Highlighter for ShellHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> std::borrow::Cow<'h, str> {
        // Dim, so the hint reads as a suggestion rather than typed text.
        format!("\x1b[2m{hint}\x1b[0m").into()
    }
}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

fn pair(display: impl Into<String>, replacement: impl Into<String>) -> Pair {
    Pair { display: display.into(), replacement: replacement.into() }
}

impl CompletionData {
    /// The command a typed word names: on the agent, `ping` is `guest-ping`.
    fn command_name(&self, word: &str) -> String {
        let word = word.trim_start_matches('!');
        match self.agent_commands {
            Some(_) => crate::ga::command_name(word).unwrap_or_default(),
            None => word.to_owned(),
        }
    }
}

/// Candidates for the text before the cursor: the byte offset where the replaced part
/// starts, and the candidates.
pub fn complete(data: &CompletionData, before: &str) -> (usize, Vec<Pair>) {
    if let Some(hmp) = &data.hmp {
        let start = before.len() - before.trim_start().len();
        let typed = &before[start..];
        let found = hmp.iter().filter(|c| c.starts_with(typed)).map(|c| pair(c.clone(), c.clone()));
        return (start, found.collect());
    }
    let words = split_words(before);
    let (word_start, word, previous) = match words.split_last() {
        Some((&(start, w), rest)) if start + w.len() == before.len() => (start, w, rest),
        _ => (before.len(), "", &words[..]),
    };
    let previous: Vec<&str> = previous.iter().map(|&(_, w)| w).collect();
    if let Some(commands) = &data.agent_commands {
        return complete_agent(data, commands, &previous, word, word_start);
    }
    let Some(schema) = data.schema.as_deref() else {
        return (before.len(), Vec::new());
    };

    // Inside a transaction, the segment after the last `transaction(` or `;` is one action.
    let trans_start = previous.iter().rposition(|w| *w == "transaction(" || *w == ";");
    if data.in_transaction || trans_start.is_some() {
        let segment = &previous[trans_start.map_or(0, |i| i + 1)..];
        return match segment.split_first() {
            None => {
                let actions = schema::transaction_actions(schema);
                (word_start, names(actions.iter().map(String::as_str), word, " "))
            }
            Some((action, args)) => {
                let ty = schema::transaction_action_type(schema, action);
                complete_argument(ty, args, word, word_start)
            }
        };
    }
    match previous.as_slice() {
        [] => {
            let builtins = ["help", "transaction("].into_iter();
            let cmds = schema.command_names().chain(builtins);
            let typed = word.trim_start_matches('!');
            (word_start + (word.len() - typed.len()), names(cmds, typed, " "))
        }
        ["help"] => (word_start, names(schema.command_names(), word, "")),
        [cmd, args @ ..] => {
            let ty = schema.command(cmd.trim_start_matches('!')).map(|c| c.arguments());
            complete_argument(ty, args, word, word_start)
        }
    }
}

/// On the agent: its commands as the first word (and after `help`), full names offered for
/// short ones typed (`get-o` completes to `guest-get-osinfo`); then the command's arguments.
fn complete_agent(
    data: &CompletionData,
    commands: &[String],
    previous: &[&str],
    word: &str,
    word_start: usize,
) -> (usize, Vec<Pair>) {
    let matching = |typed: &str, suffix: &str, builtins: &[&str]| {
        let long = format!("guest-{typed}");
        let all = commands.iter().map(String::as_str).chain(builtins.iter().copied());
        all.filter(|n| n.starts_with(typed) || n.starts_with(&long))
            .map(|n| pair(n, format!("{n}{suffix}")))
            .collect()
    };
    match previous {
        [] => {
            let typed = word.trim_start_matches('!');
            (word_start + (word.len() - typed.len()), matching(typed, " ", &["help"]))
        }
        ["help"] => (word_start, matching(word, "", &[])),
        [cmd, args @ ..] => {
            let name = data.command_name(cmd);
            let ty = data.schema.as_deref().and_then(|s| s.command(&name)).map(|c| c.arguments());
            complete_argument(ty, args, word, word_start)
        }
    }
}

/// After a command and a space: the required arguments not given yet (`node=<string> ...`).
pub fn hint(data: &CompletionData, line: &str) -> Option<String> {
    let schema = data.schema.as_ref()?;
    if data.hmp.is_some() || data.in_transaction || !line.ends_with(' ') {
        return None;
    }
    let words: Vec<&str> = split_words(line).into_iter().map(|(_, w)| w).collect();
    let (cmd, args) = words.split_first()?;
    let object = schema.command(&data.command_name(cmd))?.arguments().object_branch()?;
    let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let given = parse_key_values(&owned).ok()?;
    let missing: Vec<String> = object
        .members_for(Some(&given))
        .into_iter()
        .filter(|m| !m.is_optional() && !given.contains_key(m.name()))
        .map(|m| format!("{}=<{}>", m.name(), m.ty().label()))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" "))
}

/// Names starting with `typed`, each followed by `suffix` once chosen.
fn names<'a>(all: impl Iterator<Item = &'a str>, typed: &str, suffix: &str) -> Vec<Pair> {
    all.filter(|n| n.starts_with(typed)).map(|n| pair(n, format!("{n}{suffix}"))).collect()
}

/// Completes `word` as an argument of an object of type `ty` (a command's, or an action's
/// `data`): `key` or `a.b.key` names, or a value after `key=`.
fn complete_argument(
    ty: Option<Type<'_>>,
    previous: &[&str],
    word: &str,
    word_start: usize,
) -> (usize, Vec<Pair>) {
    let Some(ty) = ty else {
        return (word_start, Vec::new());
    };
    let owned: Vec<String> = previous.iter().map(|s| s.to_string()).collect();
    let given: Option<Map<String, Value>> = parse_key_values(&owned).ok();
    if let Some((key, typed)) = word.split_once('=') {
        let path: Vec<&str> = key.split('.').collect();
        let choices =
            ty.member_at(&path, given.as_ref()).map(|m| schema::value_choices(m.ty())).unwrap_or_default();
        let found = choices.iter().filter(|c| c.starts_with(typed)).map(|c| pair(c.clone(), format!("{c} ")));
        return (word_start + key.len() + 1, found.collect());
    }
    let (parent, typed) = match word.rsplit_once('.') {
        Some((parent, typed)) => (Some(parent), typed),
        None => (None, word),
    };
    let object = match parent {
        None => ty.object_branch(),
        Some(p) => {
            let path: Vec<&str> = p.split('.').collect();
            ty.member_at(&path, given.as_ref()).and_then(|m| m.ty().object_branch())
        }
    };
    let Some(object) = object else {
        return (word_start, Vec::new());
    };
    // Arguments already given at this level are not offered again.
    let level: Option<&Map<String, Value>> = match parent {
        None => given.as_ref(),
        Some(p) => p
            .split('.')
            .try_fold(given.as_ref(), |m, k| m.map(|m| m.get(k).and_then(Value::as_object)))
            .flatten(),
    };
    let candidates = object
        .members_for(level)
        .into_iter()
        .filter(|m| m.name().starts_with(typed) && !level.is_some_and(|l| l.contains_key(m.name())))
        .map(|m| {
            let suffix = if schema::has_members(m.ty()) { "." } else { "=" };
            pair(m.name(), format!("{}{suffix}", m.name()))
        })
        .collect();
    let offset = parent.map_or(0, |p| p.len() + 1);
    (word_start + offset, candidates)
}

/// Words with their byte offsets, split at white space outside quotes.
fn split_words(line: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push((s, &line[s..i]));
            }
            continue;
        }
        start.get_or_insert(i);
        if c == '"' || c == '\'' {
            quote = Some(c);
        }
    }
    if let Some(s) = start {
        words.push((s, &line[s..]));
    }
    words
}
