//! Progress as plain lines, for logs (`nfsio cp --progress`): once a second, and once at the
//! end, one line on stderr with what is done, the total, the percentage, the rate and an ETA
//! from a smoothed rate, whether or not stderr is a terminal. It reads the same counters as
//! the progress bar (an indicatif bar that draws nowhere), so both tell the same story.

use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget};

/// A bar that keeps count but draws nothing, of `len_bytes` when known.
pub(crate) fn counting(len_bytes: Option<u64>) -> ProgressBar {
    ProgressBar::with_draw_target(len_bytes, ProgressDrawTarget::hidden())
}

/// The task printing the lines.
pub(crate) struct Lines {
    bar: ProgressBar,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

/// Weight of the newest one-second rate in the smoothed rate.
const SMOOTHING: f64 = 0.3;

impl Lines {
    /// Prints a line about `bar` every second until [`Lines::finish`].
    pub(crate) fn start(bar: &ProgressBar) -> Lines {
        let started = Instant::now();
        let watched = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last, mut rate) = (0u64, None::<f64>);
            loop {
                tick.tick().await;
                let done = watched.position();
                let now_rate = done.saturating_sub(last) as f64;
                last = done;
                let smoothed = rate.map_or(now_rate, |r| r + SMOOTHING * (now_rate - r));
                rate = Some(smoothed);
                eprintln!("{}", line(&watched, smoothed, started.elapsed()));
            }
        });
        Lines {
            bar: bar.clone(),
            started,
            task,
        }
    }

    /// Stops the lines and prints the last one (the average rate).
    pub(crate) fn finish(self) {
        self.task.abort();
        let elapsed = self.started.elapsed();
        let rate = self.bar.position() as f64 / elapsed.as_secs_f64().max(1e-9);
        eprintln!("{}", line(&self.bar, rate, elapsed));
    }
}

/// `nfsio cp: [MESSAGE, ]DONE of TOTAL (P%), RATE/s, eta S s, T s`.
fn line(bar: &ProgressBar, rate_per_s: f64, elapsed: Duration) -> String {
    let done = bar.position();
    let message = bar.message();
    let mut text = String::from("nfsio cp: ");
    if !message.is_empty() {
        text.push_str(&format!("{message}, "));
    }
    match bar.length() {
        Some(total) => {
            let percent = if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            };
            text.push_str(&format!(
                "{} of {} ({percent:.0}%), {}/s",
                HumanBytes(done),
                HumanBytes(total),
                HumanBytes(rate_per_s as u64)
            ));
            if done < total && rate_per_s > 0.0 {
                let eta_s = (total - done) as f64 / rate_per_s;
                text.push_str(&format!(", eta {eta_s:.0} s"));
            }
        }
        None => text.push_str(&format!(
            "{}, {}/s",
            HumanBytes(done),
            HumanBytes(rate_per_s as u64)
        )),
    }
    text.push_str(&format!(", {:.1} s", elapsed.as_secs_f64()));
    text
}
