//! Progress of the long verbs (copy, pack, gc, check-tree, a whole-database
//! inspect): a spinner with a message on standard error, drawn only when
//! standard error is a terminal, so that piped or redirected output stays
//! exactly the verb's lines.

use std::time::Duration;

/// A spinner, cleared when dropped.
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    /// Starts a spinner showing `message`.
    pub fn start(message: impl Into<String>) -> Progress {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(bar)
    }

    /// Runs `f` with the spinner hidden, so that lines `f` prints do not
    /// mix with it on a terminal.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }

    /// Shows `message` instead.
    pub fn show(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
