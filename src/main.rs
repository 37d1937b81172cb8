//! `nfsio`: the command-line interface.
//!
//! Each subcommand is a thin shell over `nfsio-client`: parse arguments, connect, run, and on
//! failure print one line naming the path, the NFS status and the errno, and exit non-zero.

mod bytepath;
mod change;
mod copy;
mod demo;
mod df;
mod docs;
mod du;
mod glob;
mod ids;
mod json;
mod links;
mod listing;
mod mount;
mod operand;
mod output;
mod progress;
mod quote;
mod remove;
mod rename;
mod report;
mod serve;
mod short;
mod signals;
mod stat;
mod tree;
mod units;
mod when;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use nfsio_client::proto::nfs3::{Fattr, FileType};
use nfsio_client::{Client, NfsUrl};

use crate::report::Failure;

/// A userspace NFSv3 client and server.
#[derive(Parser)]
#[command(name = "nfsio", version, about)]
struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy a file; each side is a local path or an nfs:// URL.
    #[command(override_usage = "nfsio cp [OPTIONS] <SRC>... <DST>")]
    Cp(copy::CpArgs),
    /// List directories (or show files), as GNU ls with LC_ALL=C.
    Ls(listing::LsArgs),
    /// Write a file's contents to standard output.
    Cat {
        /// nfs://host/export/path
        url: String,
    },
    /// Show files' attributes, in GNU stat's layout.
    Stat(stat::StatArgs),
    /// Remove files; with -r, directories and everything in them.
    Rm(remove::RmArgs),
    /// Remove empty directories.
    Rmdir(remove::RmdirArgs),
    /// Change the mode of files (octal, or symbolic as u+x,go-w).
    Chmod(change::ChmodArgs),
    /// Change the owner and/or group of files.
    Chown(change::ChownArgs),
    /// Shrink or extend files to a size (created when missing, unless -c).
    Truncate(change::TruncateArgs),
    /// Set files' times to now (created when missing, unless -c).
    Touch(change::TouchArgs),
    /// Make a hard link, or with -s a symbolic link.
    Ln(links::LnArgs),
    /// Print a symbolic link's target.
    Readlink(links::ReadlinkArgs),
    /// Show an export's size, used and available space.
    Df(df::DfArgs),
    /// Show the space files and directory trees use.
    Du(du::DuArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff), or write every page into a directory with --dir.
    Man(docs::ManArgs),
    /// Create directories.
    Mkdir {
        /// Create missing parents too, and succeed if the directory exists.
        #[arg(short = 'p')]
        parents: bool,
        /// nfs://host/export/path (one or more)
        #[arg(required = true, value_name = "URL")]
        urls: Vec<String>,
    },
    /// Serve a local directory over NFSv3 (MOUNT v3, and portmap v2 with --portmap-port).
    Serve(serve::ServeArgs),
    /// Start the embedded server on a temporary directory, write a generated file through
    /// the client, make it durable, read it back, verify, print throughput and RPC counts.
    Demo(demo::DemoArgs),
    /// Mount an export on a directory (FUSE); returns once the mount answers, or stays in
    /// the foreground with -f.
    Mount(mount::MountArgs),
    /// Unmount a mount made by `nfsio mount`.
    Umount(mount::UmountArgs),
    /// Rename files or directories within one export, or move them into a directory.
    #[command(override_usage = "nfsio mv [OPTIONS] <SRC>... <DST>")]
    Mv(rename::MvArgs),
}

/// Logs go to stderr, coloured only when it is a terminal and `NO_COLOR` is not set
/// (<https://no-color.org>: any value, even empty, turns colour off).
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // fuser 0.18.0 unmounts once more when its session ends and warns that the mount is
    // gone: `nfsio mount` has unmounted it already (lazily, which fuser's plain umount(2)
    // cannot do), so that warning is noise below -vv.
    let default = match verbose {
        0 | 1 => format!("{default},fuser::mnt=error"),
        _ => default.to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

/// Keeps freed memory in the process instead of returning it to the kernel.
///
/// Every 1 MiB READ reply and WRITE payload is a fresh buffer; with glibc's defaults, freeing
/// one hands its pages back to the kernel, and the next allocation faults them in zeroed
/// again. Measured here downloading 1 GiB from ganesha: 1.4 s of system time per GiB with
/// the defaults, 0.6 s with these settings, and the copy 40% faster. The resident set stays
/// at its peak, which the transfer window bounds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const MMAP_THRESHOLD_BYTES: libc::c_int = 64 << 20;
    const TRIM_THRESHOLD_BYTES: libc::c_int = 512 << 20;
    // SAFETY: mallopt only changes glibc's allocation parameters; it is called before any
    // other thread exists, and a refused setting (return value 0) leaves the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    // Read (and kept) while this is the process's only thread: see `change::umask`.
    change::umask();
    let cli = Cli::parse();
    require_destination(&cli.command);
    init_logging(cli.verbose);
    let mut builder = if runs_on_one_thread(&cli.command) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nfsio: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, cli.verbose)) {
        Ok(()) => ExitCode::SUCCESS,
        // `nfsio cat URL | head`: the reader has all it wanted.
        Err(failure) if failure.is_reader_gone() => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("nfsio: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `command` runs its tasks on the main thread alone. A client command is one stream
/// of calls whose replies wake the task waiting for them: on one thread that wake is a queue
/// push, across worker threads a futex and an eventfd write per reply (`nfsio cat` of 1 GiB:
/// about 6,000 context switches on the worker pool, 300 on one thread). Local files are read
/// and written on threads of their own either way. The server and the mount serve many callers
/// at once and keep the pool (the mount also blocks in place for its FUSE session), as does the
/// demo, which runs a server.
fn runs_on_one_thread(command: &Command) -> bool {
    !matches!(
        command,
        Command::Mount(_) | Command::Serve(_) | Command::Demo(_)
    )
}

async fn run(command: Command, verbose: u8) -> Result<(), Failure> {
    match command {
        Command::Mount(args) => mount::run(args, verbose).await,
        Command::Umount(args) => mount::umount(&args),
        Command::Cp(args) => cp(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Ls(args) => listing::ls(&args).await,
        Command::Cat { url } => cat(&url).await,
        Command::Stat(args) => stat::stat(&args).await,
        Command::Rm(args) => remove::rm(&args).await,
        Command::Rmdir(args) => remove::rmdir(&args).await,
        Command::Chmod(args) => change::chmod(&args).await,
        Command::Chown(args) => change::chown(&args).await,
        Command::Truncate(args) => change::truncate(&args).await,
        Command::Touch(args) => change::touch(&args).await,
        Command::Ln(args) => links::ln(&args).await,
        Command::Readlink(args) => links::readlink(&args).await,
        Command::Df(args) => df::df(&args).await,
        Command::Du(args) => du::du(&args).await,
        Command::Completions(args) => docs::completions(&args, Cli::command()),
        Command::Man(args) => docs::man(&args, Cli::command()),
        Command::Mkdir { parents, urls } => {
            for url in &urls {
                mkdir(url, parents).await?;
            }
            Ok(())
        }
        Command::Mv(args) => rename::mv(&args).await,
    }
}

/// `nfsio cp`: one file onto another as before; trees, several sources and -p/-n/-u through
/// the tree copy (`tree`).
async fn cp(args: copy::CpArgs) -> Result<(), Failure> {
    // `nfs:PATH` is PATH on the server NFSIO_URL names (see `short.rs`); a bare path is local,
    // kept as the bytes given.
    let mut operands = Vec::with_capacity(args.paths.len());
    for arg in &args.paths {
        operands.push(operand::Operand::parse(arg)?);
    }
    // A pattern in a source URL's last component is the server's to expand.
    if let Some((dst, srcs)) = operands.split_last() {
        let mut expanded = Vec::with_capacity(srcs.len() + 1);
        for src in srcs {
            match src.url() {
                Some(url) => expanded.extend(
                    glob::expand(&[url.to_owned()])
                        .await?
                        .into_iter()
                        .map(operand::Operand::Url),
                ),
                None => expanded.push(src.clone()),
            }
        }
        expanded.push(dst.clone());
        operands = expanded;
    }
    let simple =
        operands.len() == 2 && !(args.recursive || args.preserve || args.no_clobber || args.update);
    if simple {
        return copy::run_one(&operands[0], &operands[1], &args).await;
    }
    crate::tree::run(&args, &operands).await
}

/// `cp` and `mv` with one operand: a usage error (exit 2) saying what is missing, as
/// coreutils do ("missing destination operand after 'a'"). Their operands are one list so
/// that clap takes them in order; it checks only that there is one.
fn require_destination(command: &Command) {
    let (name, only) = match command {
        Command::Cp(args) if args.paths.len() == 1 => ("cp", args.paths[0].to_string_lossy()),
        Command::Mv(args) if args.paths.len() == 1 => {
            ("mv", std::borrow::Cow::Borrowed(args.paths[0].as_str()))
        }
        _ => return,
    };
    let message = format!("missing destination operand after '{only}'");
    let mut cli = Cli::command();
    let kind = clap::error::ErrorKind::MissingRequiredArgument;
    match cli.find_subcommand_mut(name) {
        Some(sub) => sub.error(kind, message).exit(),
        None => cli.error(kind, message).exit(),
    }
}

/// Connects to the export of `url`, with errors naming the URL.
pub(crate) async fn connect(url: &str) -> Result<Client, Failure> {
    connect_with(url, nfsio_client::ClientOptions::default()).await
}

/// Connects to the server `url` names with `options`.
pub(crate) async fn connect_with(
    url: &str,
    options: nfsio_client::ClientOptions,
) -> Result<Client, Failure> {
    let full = short::resolve(url)?;
    let parsed = NfsUrl::parse(&full).map_err(|e| Failure::nfs(url, e.into()))?;
    Client::connect_with(&parsed, options)
        .await
        .map_err(|e| Failure::nfs(url, e))
}

fn type_char(file_type: FileType) -> char {
    match file_type {
        FileType::Regular => '-',
        FileType::Directory => 'd',
        FileType::Block => 'b',
        FileType::Character => 'c',
        FileType::Symlink => 'l',
        FileType::Socket => 's',
        FileType::Fifo => 'p',
    }
}

pub(crate) fn mode_string(attributes: &Fattr) -> String {
    let mut out = String::with_capacity(10);
    out.push(type_char(attributes.file_type));
    let mode = attributes.mode;
    for (shift, special, special_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        out.push(match (mode & special != 0, exec) {
            (true, true) => special_char,
            (true, false) => special_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    out
}

async fn cat(url: &str) -> Result<(), Failure> {
    let file = copy::open_nfs(url, None).await?;
    let mut reader = copy::FileReader::new(&file, url);
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = reader.next_chunk().await? {
        out.write_all(&chunk).map_err(Failure::stdout)?;
    }
    out.flush().map_err(Failure::stdout)?;
    file.close().await.map_err(|e| Failure::nfs(url, e))
}

async fn mkdir(url: &str, parents: bool) -> Result<(), Failure> {
    let client = connect(url).await?;
    let path = client.url_path().to_owned();
    if !parents {
        return client
            .mkdir_path(&path, 0o755)
            .await
            .map(drop)
            .map_err(|e| Failure::nfs(url, e));
    }
    let mut prefix = Vec::new();
    for component in path.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        prefix = crate::bytepath::join(&prefix, component);
        match client.mkdir_path(&prefix, 0o755).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(nfsio_client::proto::nfs3::Nfs3Status::Exist) => {
                let (_, attributes) = client
                    .lookup_path(&prefix)
                    .await
                    .map_err(|e| Failure::nfs(url, e))?;
                if attributes.file_type != FileType::Directory {
                    return Err(Failure::nfs(url, e));
                }
            }
            Err(e) => return Err(Failure::nfs(url, e)),
        }
    }
    Ok(())
}
