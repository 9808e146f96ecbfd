//! What an agent is and can do: `guest-info`, read into a form that answers the questions a
//! client asks of it.

use crate::ga::types::GuestAgentInfo;

/// The agent's version and its commands, as `guest-info` lists them.
///
/// ```no_run
/// # async fn demo(agent: qmp::ga::Agent) -> Result<(), qmp::Error> {
/// let info = agent.info().await?;
/// if !info.is_enabled("guest-exec") {
///     eprintln!("qemu-ga {} has guest-exec disabled", info.version);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's version (`7.2.19` and so on).
    pub version: String,
    /// Every command it has, sorted by name.
    pub commands: Vec<CommandState>,
}

/// One command of the agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandState {
    /// Its name.
    pub name: String,
    /// False when the agent was started with it blocked (`-b`) or it is disabled while the
    /// file systems are frozen.
    pub enabled: bool,
    /// False for the commands that answer nothing when they succeed.
    pub success_response: bool,
}

impl AgentInfo {
    /// True when the agent has the command (enabled or not).
    pub fn supports(&self, name: &str) -> bool {
        self.command(name).is_some()
    }

    /// True when the agent has the command and it is enabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.command(name).is_some_and(|c| c.enabled)
    }

    /// The command's state, if the agent has it.
    pub fn command(&self, name: &str) -> Option<&CommandState> {
        self.commands.binary_search_by(|c| c.name.as_str().cmp(name)).ok().map(|i| &self.commands[i])
    }

    /// The names of the enabled commands, sorted.
    pub fn enabled(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().filter(|c| c.enabled).map(|c| c.name.as_str())
    }
}

impl From<GuestAgentInfo> for AgentInfo {
    fn from(info: GuestAgentInfo) -> Self {
        let mut commands: Vec<CommandState> = info
            .supported_commands
            .into_iter()
            .map(|c| CommandState { name: c.name, enabled: c.enabled, success_response: c.success_response })
            .collect();
        commands.sort_by(|a, b| a.name.cmp(&b.name));
        AgentInfo { version: info.version, commands }
    }
}
