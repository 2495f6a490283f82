//! The `tandem` binary's commands as a library: one function per subcommand ([`commands`]),
//! the config they read ([`config`]), the fit-and-evaluate steps they share ([`pipeline`]) and
//! progress on stderr ([`progress`]). The binary parses arguments and calls these; the Python
//! package calls the same functions, so `tandem.evaluate_split` writes the CLI's report.

#![forbid(unsafe_code)]

pub mod commands;
pub mod config;
pub mod pipeline;
pub mod progress;
