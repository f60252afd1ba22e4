//! The CNI verbs and the environment each one needs.

use std::fmt;

/// A CNI operation, from `CNI_COMMAND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Attach a container to the network.
    Add,
    /// Verify an attachment (0.4.0+).
    Check,
    /// Detach; must succeed when already detached.
    Del,
    /// Remove stale resources not in the valid-attachment list (1.1.0+).
    Gc,
    /// Report whether ADD can be serviced (1.1.0+).
    Status,
    /// Report the supported spec versions.
    Version,
}

impl Command {
    /// Every verb.
    pub const ALL: [Command; 6] =
        [Command::Add, Command::Check, Command::Del, Command::Gc, Command::Status, Command::Version];

    /// The `CNI_COMMAND` spelling, e.g. `"ADD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Check => "CHECK",
            Command::Del => "DEL",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }

    /// Reads a `CNI_COMMAND` value; exact upper-case spelling, as the reference.
    pub fn parse(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The variables that must be set (non-empty) for this verb, besides
    /// `CNI_COMMAND`, in the order the reference reports them. `CNI_PATH`
    /// is required for every verb but VERSION, as the reference skel does.
    pub fn required_vars(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            Command::Gc | Command::Status => &["CNI_PATH"],
            Command::Version => &[],
        }
    }

    /// Whether the verb is about one attachment (container id + ifname).
    pub fn is_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Check | Command::Del)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_round_trips() {
        for c in Command::ALL {
            assert_eq!(Command::parse(c.as_str()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(Command::parse("del"), None);
        assert_eq!(Command::parse(""), None);
    }

    #[test]
    fn only_attachment_verbs_need_container_and_ifname() {
        for c in Command::ALL {
            let needs = c.required_vars().contains(&"CNI_CONTAINERID");
            assert_eq!(needs, c.is_attachment(), "{c}");
            assert_eq!(c.required_vars().contains(&"CNI_PATH"), c != Command::Version);
        }
        assert!(!Command::Del.required_vars().contains(&"CNI_NETNS"));
    }
}
