//! libbpf's messages while a load runs (the verifier log among them), kept
//! so that a failure can be explained (load_failure.rs).

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

/// Collects libbpf's messages (the verifier log among them) while a load runs,
/// so failures can be explained; NETTRACE_DEBUG=1 also prints them.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn on_libbpf_message(level: PrintLevel, msg: String) {
    if std::env::var_os("NETTRACE_DEBUG").is_some() {
        eprint!("{msg}");
    }
    if level != PrintLevel::Debug {
        if let Ok(mut log) = LOG.lock() {
            log.push(msg);
        }
    }
}

pub struct LogCapture;

impl LogCapture {
    pub fn start() -> LogCapture {
        LOG.lock().map(|mut l| l.clear()).ok();
        let level = if std::env::var_os("NETTRACE_DEBUG").is_some() { PrintLevel::Debug } else { PrintLevel::Warn };
        libbpf_rs::set_print(Some((level, on_libbpf_message)));
        LogCapture
    }

    pub fn finish(self) -> Vec<String> {
        let lines = LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
        drop(self);
        lines
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        libbpf_rs::set_print(None);
    }
}
