//! `nfsio completions SHELL` and `nfsio man`: shell completions and manual pages generated
//! from the same definitions as the parser (clap_complete, clap_mangen), so they never fall
//! behind the commands.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Command};
use clap_complete::Shell;

use crate::report::Failure;

/// `nfsio completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

/// `nfsio man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write nfsio.1 and one page per command (nfsio-cp.1, ...) into this directory instead
    /// of printing nfsio.1 on standard output.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`, e.g. `nfsio completions bash >
/// /etc/bash_completion.d/nfsio`.
pub fn completions(args: &CompletionsArgs, mut command: Command) -> Result<(), Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nfsio", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(Failure::stdout)
}

/// Prints nfsio.1, or writes every page into `args.dir`.
pub fn man(args: &ManArgs, command: Command) -> Result<(), Failure> {
    let Some(dir) = &args.dir else {
        let page = render(command).map_err(Failure::stdout)?;
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(&page)
            .and_then(|()| stdout.flush())
            .map_err(Failure::stdout);
    };
    let write = |name: &str, page: Vec<u8>| {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).map_err(|e| Failure::io(&path.display().to_string(), e))
    };
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("nfsio-{}", sub.get_name());
        let page = render(sub.clone().name(name.clone())).map_err(Failure::stdout)?;
        write(&name, page)?;
    }
    let page = render(command).map_err(Failure::stdout)?;
    write("nfsio", page)
}

fn render(command: Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    Ok(page)
}
