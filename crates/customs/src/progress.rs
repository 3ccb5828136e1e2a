//! The progress display while an image's layers are read: bytes read of the total and the rate, on standard
//! error, only on a terminal, only once the work has taken two seconds, never with `--quiet` or `--no-progress`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before a display appears: short scans stay silent. `CUSTOMS_PROGRESS_DELAY_MS` changes it
/// (tests show the display at once).
fn delay() -> Duration {
    std::env::var("CUSTOMS_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

/// A display for reading one image's layers.
pub(crate) struct LayerProgress {
    bar: ProgressBar,
    started: Instant,
    delay: Duration,
    shown: std::sync::atomic::AtomicBool,
    enabled: bool,
    layers: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl LayerProgress {
    /// A display for `layers` layers of `bytes` (compressed) in total, when known.
    pub(crate) fn new(layers: usize, bytes: Option<u64>) -> LayerProgress {
        let session = crate::session::get();
        let enabled = !session.quiet && !session.no_progress && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(bytes, ProgressDrawTarget::hidden());
        let template = if bytes.is_some() {
            "{spinner} reading layers {msg} {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta} left)"
        } else {
            "{spinner} reading layers {msg} {bytes} ({binary_bytes_per_sec})"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
        bar.set_message(format!("0/{layers}"));
        LayerProgress {
            bar,
            started: Instant::now(),
            delay: delay(),
            shown: false.into(),
            enabled,
            layers,
            done: 0.into(),
        }
    }

    fn maybe_show(&self) {
        use std::sync::atomic::Ordering;
        if self.enabled
            && !self.shown.load(Ordering::Relaxed)
            && self.started.elapsed() >= self.delay
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

impl customs_oci::Progress for LayerProgress {
    fn read(&self, bytes: u64) {
        self.bar.inc(bytes);
        self.maybe_show();
    }

    fn layer_done(&self, _index: usize) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.bar.set_message(format!("{done}/{}", self.layers));
        self.maybe_show();
    }
}

impl Drop for LayerProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
