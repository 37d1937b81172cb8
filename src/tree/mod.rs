//! `nfsio cp -r` and `nfsio cp SRC... DIR`: trees and many files, many at once.
//!
//! The sources are walked first (every directory listed once, READDIRPLUS on an export), so
//! the copy knows its totals for the progress bar and never walks into what it creates; then
//! the destination's directories are made, parents first; then the files and links are
//! copied, `--jobs` (16) at once, each under a temporary name renamed over its final name once
//! it is complete and durable (`files.rs`); with `-p`, directories get their modes and times
//! last, deepest first. A file that fails is reported on its own line and the copy goes on;
//! the exit status is then 1. SIGINT or SIGTERM stops the copy and removes the temporary
//! files, so that no half-written file is left under a final name. A summary line (files,
//! bytes, time, rates) ends the copy unless `--quiet`.

mod files;
mod plan;
mod side;
mod small_read;

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use self::files::{FileCopy, Partials};
use self::plan::{Plan, Target};
use self::side::{Kind, Side};
use crate::copy::CpArgs;
use crate::operand::Operand;
use crate::report::Failure;
use crate::signals::Termination;

/// What the copy did.
#[derive(Debug, Default)]
struct Totals {
    files: u64,
    bytes: u64,
    failed: u64,
    skipped: u64,
}

/// Runs a tree copy (or a copy of several sources, or one with -p, -n or -u).
pub(crate) async fn run(args: &CpArgs, operands: &[Operand]) -> Result<(), Failure> {
    let mut signals = Termination::install()
        .map_err(|e| Failure::message(format!("cannot watch signals: {e}")))?;
    let started = Instant::now();
    let (plan, mut failed) = Plan::make(args, operands).await?;
    let plan = Arc::new(plan);
    let progress = if args.progress {
        crate::progress::counting(Some(plan.total_bytes()))
    } else {
        progress_bar(&plan, args.quiet)
    };
    progress.set_message(format!("0 of {} files", plan.targets.len()));
    let lines = args
        .progress
        .then(|| crate::progress::Lines::start(&progress));
    let partials = Arc::new(Partials::default());
    let work = execute(
        Arc::clone(&plan),
        args,
        Arc::clone(&partials),
        progress.clone(),
    );
    let totals = tokio::select! {
        totals = work => totals,
        stop = signals.wait() => {
            progress.finish_and_clear();
            let removed = partials.remove_all(&plan.dst_side).await;
            if let Side::Nfs(client) = &plan.dst_side {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), client.shutdown()).await;
            }
            return Err(Failure::message(format!(
                "interrupted by {}: removed {removed} partial file(s); no file was left half-written under its name",
                stop.name()
            )));
        }
    };
    if let Some(lines) = lines {
        lines.finish();
    }
    progress.finish_and_clear();
    failed += totals.failed;
    if !args.quiet {
        eprintln!(
            "{}",
            summary(&totals, failed, started.elapsed().as_secs_f64())
        );
    }
    if args.stats
        && let Side::Nfs(client) = &plan.dst_side
    {
        let mut report = format!("destination {}:\n", client.server());
        report.push_str(&crate::report::stats_table(&client.stats()));
        report.push_str(&crate::report::cache_line(&client.cache_stats()));
        crate::output::out!("{report}\n")?;
    }
    if failed > 0 {
        return Err(Failure::message(format!(
            "{failed} of the copy's entries failed (see above)"
        )));
    }
    Ok(())
}

fn summary(totals: &Totals, failed: u64, seconds: f64) -> String {
    let seconds = seconds.max(1e-9);
    let mut line = format!(
        "copied {} files, {} bytes in {seconds:.2} s ({:.0} files/s, {:.1} MB/s)",
        totals.files,
        totals.bytes,
        totals.files as f64 / seconds,
        totals.bytes as f64 / seconds / 1e6
    );
    if totals.skipped > 0 {
        line.push_str(&format!(", {} skipped", totals.skipped));
    }
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    line
}

fn progress_bar(plan: &Plan, quiet: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(plan.total_bytes());
    let style = ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {percent}% {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Makes the directories, copies the files and links `--jobs` at once, then (-p) gives the
/// directories their modes and times.
async fn execute(
    plan: Arc<Plan>,
    args: &CpArgs,
    partials: Arc<Partials>,
    progress: ProgressBar,
) -> Totals {
    let mut totals = Totals::default();
    let (dirs, new_dirs) = match plan.make_dirs(args.preserve).await {
        Ok((dirs, new_dirs)) => (Arc::new(dirs), Arc::new(new_dirs)),
        Err(e) => {
            eprintln!("nfsio: {e}");
            totals.failed += 1;
            return totals;
        }
    };
    let mut running: JoinSet<Result<Option<u64>, Failure>> = JoinSet::new();
    let count = plan.targets.len();
    let mut done = 0usize;
    for index in 0..count {
        if running.len() >= usize::from(args.jobs) {
            collect(running.join_next().await, &mut totals, &progress);
            done += 1;
            progress.set_message(format!("{done} of {count} files"));
        }
        let (plan, partials) = (Arc::clone(&plan), Arc::clone(&partials));
        let dirs = (Arc::clone(&dirs), Arc::clone(&new_dirs));
        let options = (args.preserve, args.no_clobber, args.update);
        running.spawn(async move {
            copy_target(&plan, (&dirs.0, &dirs.1), index, options, &partials).await
        });
    }
    while let Some(joined) = running.join_next().await {
        collect(Some(joined), &mut totals, &progress);
        done += 1;
        progress.set_message(format!("{done} of {count} files"));
    }
    if args.preserve
        && let Err(e) = plan.preserve_dirs(&dirs).await
    {
        eprintln!("nfsio: {e}");
        totals.failed += 1;
    }
    totals
}

fn collect(
    joined: Option<Result<Result<Option<u64>, Failure>, tokio::task::JoinError>>,
    totals: &mut Totals,
    progress: &ProgressBar,
) {
    match joined {
        Some(Ok(Ok(Some(bytes)))) => {
            totals.files += 1;
            totals.bytes += bytes;
            progress.inc(bytes);
        }
        Some(Ok(Ok(None))) => totals.skipped += 1,
        Some(Ok(Err(e))) => {
            progress.suspend(|| eprintln!("nfsio: {e}"));
            totals.failed += 1;
        }
        Some(Err(e)) => {
            progress.suspend(|| eprintln!("nfsio: a copy task failed: {e}"));
            totals.failed += 1;
        }
        None => {}
    }
}

/// Copies one file or link; None when -n or -u left the destination as it was.
async fn copy_target(
    plan: &Plan,
    (dirs, new_dirs): (&[side::Dir], &[bool]),
    index: usize,
    (preserve, no_clobber, update): (bool, bool, bool),
    partials: &Partials,
) -> Result<Option<u64>, Failure> {
    let target: &Target = &plan.targets[index];
    let dst_dir = plan.dst_dir(dirs, target.parent);
    if no_clobber || update {
        let existing = plan.dst_side.lookup(dst_dir, &target.name).await?;
        if let Some(existing) = existing {
            let newer = target.node.mtime > existing.mtime;
            if no_clobber || !newer {
                return Ok(None);
            }
        }
    }
    let src_side = plan.src_side(target.source);
    if target.node.kind == Kind::Symlink {
        let link = src_side.read_link(&target.src_dir, &target.node).await?;
        plan.dst_side
            .make_symlink(dst_dir, &target.name, &link)
            .await?;
        return Ok(Some(0));
    }
    let mode = if preserve {
        target.node.mode
    } else {
        target.node.mode & 0o777 & !crate::change::umask()
    };
    let copy = FileCopy {
        src_side,
        src_dir: &target.src_dir,
        node: &target.node,
        dst_side: &plan.dst_side,
        dst_dir,
        dst_name: &target.name,
        mode,
        preserve,
        in_new_dir: plan.is_new(new_dirs, target.parent),
        partials,
    };
    copy.run().await.map(Some)
}
