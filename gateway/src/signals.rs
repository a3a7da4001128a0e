//! The signals a gateway process answers: SIGINT and SIGTERM stop it gracefully, SIGHUP
//! reloads its certificates, password file and ACL.
//!
//! They are waited for on a thread of their own with `sigwait`, not through tokio's signal
//! driver: that driver holds 4 file descriptors (a socket pair, a duplicate of one end, and a
//! duplicate of the epoll), and a gateway at its open-files limit needs every descriptor for
//! a connection (issue 13 holds 19,990 idle connections under a limit of 20,000).
//!
//! [`Signals::install`] blocks the three signals in the calling thread, so it must run before
//! any other thread starts, the async runtime's included: threads inherit the mask, so no
//! thread runs a default handler (which would kill the process without flushing anything),
//! and a signal that comes before anyone waits stays pending until the thread takes it.

use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// What the signals thread reports.
#[derive(Debug, Clone)]
pub struct Signals {
    /// Set once SIGINT or SIGTERM came.
    stop: watch::Receiver<bool>,
    /// A permit per SIGHUP (at most one waiting).
    hangups: Arc<Notify>,
}

impl Signals {
    /// Blocks SIGINT, SIGTERM and SIGHUP and starts the thread that waits for them. Call it
    /// in `main` before starting any thread.
    #[cfg(unix)]
    pub fn install() -> std::io::Result<Self> {
        use nix::sys::signal::{SigSet, Signal};

        let (stop_tx, stop) = watch::channel(false);
        let hangups = Arc::new(Notify::new());
        let mut set = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(signal);
        }
        set.thread_block().map_err(std::io::Error::from)?;
        let hup = hangups.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                match set.wait() {
                    Ok(Signal::SIGHUP) => hup.notify_one(),
                    Ok(_) => {
                        stop_tx.send_replace(true);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot wait for signals any more");
                        return;
                    }
                }
            })?;
        Ok(Self { stop, hangups })
    }

    /// Without Unix signals nothing is listened for: the process stops when it is killed.
    #[cfg(not(unix))]
    pub fn install() -> std::io::Result<Self> {
        let (stop_tx, stop) = watch::channel(false);
        // Kept, so that `stopped` waits rather than seeing the thread gone.
        std::mem::forget(stop_tx);
        Ok(Self {
            stop,
            hangups: Arc::new(Notify::new()),
        })
    }

    /// Completes once SIGINT or SIGTERM came.
    pub async fn stopped(mut self) {
        if self.stop.wait_for(|stop| *stop).await.is_err() {
            // The thread is gone: nothing can stop the process gracefully any more.
            std::future::pending::<()>().await;
        }
    }

    /// Wakes its waiter once per SIGHUP (see `Gateway::reload_on`).
    pub fn hangups(&self) -> Arc<Notify> {
        self.hangups.clone()
    }
}
