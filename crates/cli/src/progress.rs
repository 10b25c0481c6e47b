//! Pull progress like docker draws it: on a terminal, a live line per layer with a bar,
//! bytes and speed; otherwise one plain line per state change.

use coracle_core::{Digest, ImageReference};
use coracle_engine::{LayerEvent, PullProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

pub enum PullDisplay {
    Quiet,
    /// Plain lines; `to_stderr` for `run`, whose stdout belongs to the container.
    Plain {
        last: Mutex<HashMap<Digest, &'static str>>,
        to_stderr: bool,
    },
    Terminal(Terminal),
}

pub struct Terminal {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl PullDisplay {
    pub fn new(quiet: bool) -> PullDisplay {
        Self::build(quiet, false)
    }

    /// Progress on stderr, as `docker run` shows the pull of a missing image.
    pub fn on_stderr() -> PullDisplay {
        Self::build(false, true)
    }

    fn build(quiet: bool, to_stderr: bool) -> PullDisplay {
        let terminal = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        if quiet {
            PullDisplay::Quiet
        } else if terminal {
            let target = if to_stderr {
                ProgressDrawTarget::stderr_with_hz(10)
            } else {
                ProgressDrawTarget::stdout_with_hz(10)
            };
            PullDisplay::Terminal(Terminal {
                multi: MultiProgress::with_draw_target(target),
                bars: Mutex::new(HashMap::new()),
            })
        } else {
            PullDisplay::Plain {
                last: Mutex::new(HashMap::new()),
                to_stderr,
            }
        }
    }

    /// Print a line above the bars (or plainly).
    pub fn println(&self, line: &str) {
        match self {
            PullDisplay::Quiet => {}
            PullDisplay::Terminal(t) => {
                let _ = t.multi.println(line);
            }
            PullDisplay::Plain {
                to_stderr: true, ..
            } => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            PullDisplay::Plain { .. } => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// Stop drawing; bars stay on screen in their last state.
    pub fn finish(&self) {
        if let PullDisplay::Terminal(t) = self {
            for bar in t.bars.lock().expect("progress lock").values() {
                bar.abandon();
            }
        }
    }
}

fn short(d: &Digest) -> &str {
    d.short()
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg} [{bar:50}] {bytes}/{total_bytes} {bytes_per_sec}")
        .expect("valid template")
        .progress_chars("=> ")
}

impl PullProgress for PullDisplay {
    fn resolved(&self, reference: &ImageReference, layers: &[Digest]) {
        let tag = reference
            .tag()
            .map(str::to_string)
            .or_else(|| reference.digest().map(|d| d.to_string()))
            .unwrap_or_default();
        self.println(&format!("{tag}: Pulling from {}", reference.repository()));
        if let PullDisplay::Terminal(t) = self {
            let mut bars = t.bars.lock().expect("progress lock");
            for d in layers {
                if bars.contains_key(d) {
                    continue;
                }
                let bar = t.multi.add(ProgressBar::new(0));
                bar.set_style(status_style());
                bar.set_prefix(short(d).to_string());
                bar.set_message("Pulling fs layer");
                bars.insert(d.clone(), bar);
            }
        }
    }

    fn layer(&self, blob: &Digest, event: LayerEvent) {
        match self {
            PullDisplay::Quiet => {}
            PullDisplay::Plain { last, .. } => {
                // Byte counts are for terminals; plain output keeps docker's milestones.
                let text: &'static str = match event {
                    LayerEvent::Waiting => "Pulling fs layer",
                    LayerEvent::AlreadyExists => "Already exists",
                    LayerEvent::Downloading { .. } => return,
                    LayerEvent::Retrying { .. } => "Retrying",
                    LayerEvent::Extracting => "Download complete",
                    LayerEvent::Complete => "Pull complete",
                };
                let mut last = last.lock().expect("progress lock");
                if last.get(blob) == Some(&text) {
                    return;
                }
                last.insert(blob.clone(), text);
                drop(last);
                let line = match &event {
                    LayerEvent::Retrying { attempt, reason } => {
                        format!("{}: Retrying (attempt {attempt}): {reason}", short(blob))
                    }
                    _ => format!("{}: {text}", short(blob)),
                };
                self.println(&line);
            }
            PullDisplay::Terminal(t) => {
                let bars = t.bars.lock().expect("progress lock");
                let Some(bar) = bars.get(blob) else { return };
                match event {
                    LayerEvent::Waiting => bar.set_message("Waiting"),
                    LayerEvent::AlreadyExists => {
                        bar.set_style(status_style());
                        bar.finish_with_message("Already exists");
                    }
                    LayerEvent::Downloading { done, total } => {
                        if bar.length() != Some(total) {
                            bar.set_style(bar_style());
                            bar.set_length(total);
                            bar.set_message("Downloading");
                        }
                        bar.set_position(done);
                    }
                    LayerEvent::Retrying { attempt, reason } => {
                        bar.set_message(format!("Retrying (attempt {attempt}): {reason}"))
                    }
                    LayerEvent::Extracting => {
                        bar.set_style(status_style());
                        bar.set_message("Extracting");
                    }
                    LayerEvent::Complete => {
                        bar.set_style(status_style());
                        bar.finish_with_message("Pull complete");
                    }
                }
            }
        }
    }
}
