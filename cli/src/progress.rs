//! The copy's progress on stderr: a bar on a terminal, plain lines
//! otherwise (logs, CI).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use interview_persistence::copy::CopyProgress;

/// Shows a copy's progress.
pub struct CopyProgressBar {
    bar: Option<ProgressBar>,
    /// Plain lines: the table being copied, its rows, and the next tenth
    /// to report.
    plain: Mutex<(u64, u64, u64)>,
}

impl CopyProgressBar {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>18} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            plain: Mutex::new((0, 0, 0)),
        }
    }
}

impl CopyProgressBar {
    /// Takes the bar off the terminal (a copy that ended in an error).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl CopyProgress for CopyProgressBar {
    fn table_started(&self, table: &'static str, rows: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(table);
                bar.set_length(rows);
                bar.set_position(0);
            }
            None => {
                eprintln!("copy: {table}: {rows} rows");
                if let Ok(mut plain) = self.plain.lock() {
                    *plain = (0, rows, 1);
                }
            }
        }
    }

    fn advanced(&self, table: &'static str, rows: u64) {
        match &self.bar {
            Some(bar) => bar.inc(rows),
            None => {
                if let Ok(mut plain) = self.plain.lock() {
                    let (done, total, next) = &mut *plain;
                    *done += rows;
                    // A line each time a large table passes another tenth.
                    if *total >= 10_000 && *done * 10 >= *next * *total && *next < 10 {
                        eprintln!("copy: {table}: {done}/{total} rows");
                        *next = (*done * 10 / *total).max(*next) + 1;
                    }
                }
            }
        }
    }

    fn verifying(&self) {
        match &self.bar {
            Some(bar) => {
                bar.set_message("verifying");
                bar.set_length(0);
                bar.finish_and_clear();
            }
            None => eprintln!("copy: every row written; reading the target back to verify"),
        }
    }
}
