//! The driver: one engine, at most one socket, one timer, and the hooks of the Rust API on
//! top. (The npm package's JavaScript API does the same in JavaScript, `npm/runtime.js`, so
//! none of this is in its module.)
//!
//! Every browser callback (socket open/message/close, timer, online/offline) and every API
//! call ends in [`Driver::pump`], which writes the engine's output to the socket, carries out
//! `Open`/`CloseSocket`, hands the other events to the API's [`Hooks`], and re-arms the timer
//! for the engine's next deadline. User callbacks run with no borrow held, so they may call
//! back into the client; a call made while pumping is picked up by the running pump.

use alloc::rc::{Rc, Weak};
use alloc::string::String;
use core::cell::{Cell, RefCell};

use super::network::{is_online, NetworkWatch};
use super::socket::Socket;
use super::timer::Timer;
use super::{now_ms, random_seed};
use crate::engine::{Event, Machine, Options};

/// Where the next connection attempt should go.
pub(crate) enum UrlChoice {
    /// Keep the current URL.
    Same,
    /// Use this URL from now on.
    New(String),
}

/// What the API layer does with the engine's events.
pub(crate) trait Hooks {
    /// Called before each connection attempt (`attempt` counts from 1).
    fn url(&self, attempt: u32, current: &str) -> UrlChoice;
    /// Any event other than `Open` and `CloseSocket`.
    fn event(&self, event: Event);
}

/// Owns the engine and its browser resources. Kept alive by itself until the client ends, so
/// a connected client keeps working even if the application drops every handle to it.
pub(crate) struct Driver {
    machine: RefCell<Machine>,
    hooks: Rc<dyn Hooks>,
    url: RefCell<String>,
    socket: RefCell<Option<Socket>>,
    timer: RefCell<Option<Timer>>,
    network: RefCell<Option<NetworkWatch>>,
    scheduled: Cell<Option<u64>>,
    pumping: Cell<bool>,
    alive: RefCell<Option<Rc<Driver>>>,
}

impl Driver {
    /// Creates the driver and starts connecting to `url`.
    pub(crate) fn start(url: String, mut options: Options, hooks: Rc<dyn Hooks>) -> Rc<Self> {
        let seed = random_seed();
        if options.client_id.is_empty() {
            // Unique per tab, so two tabs never take over each other's session.
            options.client_id = crate::text::hex("aviary_", seed, 12);
        }
        let driver = Rc::new_cyclic(|weak: &Weak<Driver>| {
            let timer_weak = weak.clone();
            let net_weak = weak.clone();
            Driver {
                machine: RefCell::new(Machine::new(options, seed)),
                hooks,
                url: RefCell::new(url),
                socket: RefCell::new(None),
                timer: RefCell::new(Some(Timer::new(move || {
                    if let Some(d) = timer_weak.upgrade() {
                        d.scheduled.set(None);
                        d.with(|m, now| m.handle_timeout(now));
                    }
                }))),
                network: RefCell::new(NetworkWatch::new(move |online| {
                    if let Some(d) = net_weak.upgrade() {
                        d.with(|m, now| m.set_online(online, now));
                    }
                })),
                scheduled: Cell::new(None),
                pumping: Cell::new(false),
                alive: RefCell::new(None),
            }
        });
        *driver.alive.borrow_mut() = Some(driver.clone());
        let online = is_online();
        driver.with(|m, now| {
            m.set_online(online, now);
            m.start(now);
        });
        driver
    }

    /// Runs `f` on the engine at the current time, then pumps.
    pub(crate) fn with<R>(self: &Rc<Self>, f: impl FnOnce(&mut Machine, u64) -> R) -> R {
        let result = f(&mut self.machine.borrow_mut(), now_ms());
        self.pump();
        result
    }

    /// Runs `f` on the engine without pumping: the caller registers interest in the result
    /// (a token) first and then calls [`pump`](Self::pump).
    pub(crate) fn call<R>(&self, f: impl FnOnce(&mut Machine, u64) -> R) -> R {
        f(&mut self.machine.borrow_mut(), now_ms())
    }

    /// Reads the engine without changing it.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Machine) -> R) -> R {
        f(&self.machine.borrow())
    }

    /// Whether the keep-alive timer runs in a worker (see `timer.rs`).
    pub(crate) fn timer_in_worker(&self) -> bool {
        self.timer.borrow().as_ref().is_some_and(Timer::in_worker)
    }

    /// Drops the socket without a DISCONNECT, as a network failure would.
    pub(crate) fn drop_socket(self: &Rc<Self>) {
        drop(self.socket.borrow_mut().take());
        self.with(|m, now| m.socket_closed("connection dropped", now));
    }

    /// Carries out everything the engine asked for, until it has nothing more.
    pub(crate) fn pump(self: &Rc<Self>) {
        if self.pumping.replace(true) {
            return;
        }
        loop {
            let (output, events) = {
                let mut machine = self.machine.borrow_mut();
                (machine.take_output(), machine.take_events())
            };
            if output.is_none() && events.is_empty() {
                break;
            }
            if let (Some(bytes), Some(socket)) = (output, &*self.socket.borrow()) {
                socket.send(&bytes);
            }
            for event in events {
                match event {
                    Event::Open { attempt } => self.open(attempt),
                    Event::CloseSocket => drop(self.socket.borrow_mut().take()),
                    Event::Ended => {
                        self.hooks.event(Event::Ended);
                        self.shut_down();
                    }
                    other => self.hooks.event(other),
                }
            }
        }
        self.pumping.set(false);
        self.rearm();
    }

    /// Asks the hooks for the URL, then opens the socket.
    fn open(self: &Rc<Self>, attempt: u32) {
        let current = self.url.borrow().clone();
        match self.hooks.url(attempt, &current) {
            UrlChoice::Same => self.open_socket(),
            UrlChoice::New(url) => {
                *self.url.borrow_mut() = url;
                self.open_socket();
            }
        }
    }

    fn open_socket(self: &Rc<Self>) {
        let (w1, w2, w3) = (
            Rc::downgrade(self),
            Rc::downgrade(self),
            Rc::downgrade(self),
        );
        let url = self.url.borrow().clone();
        let socket = Socket::open(
            &url,
            move || {
                if let Some(d) = w1.upgrade() {
                    d.with(|m, now| m.socket_opened(now));
                }
            },
            move |data| {
                if let Some(d) = w2.upgrade() {
                    let len = data.length() as usize;
                    d.with(|m, now| m.handle_frame(len, |buf| data.copy_to(buf), now));
                }
            },
            move |detail| {
                if let Some(d) = w3.upgrade() {
                    drop(d.socket.borrow_mut().take());
                    d.with(|m, now| m.socket_closed(&detail, now));
                }
            },
        );
        match socket {
            Ok(socket) => *self.socket.borrow_mut() = Some(socket),
            Err(_) => {
                // A malformed URL throws synchronously; report it like a failed connection.
                let detail = crate::text::concat(&["cannot open a WebSocket to ", &url]);
                self.machine.borrow_mut().socket_closed(&detail, now_ms());
            }
        }
    }

    /// Points the timer at the engine's next deadline. An earlier wake-up than needed is
    /// harmless (the engine checks timestamps), so the timer is only moved earlier, never
    /// later: a busy connection does not post to the worker on every frame.
    fn rearm(&self) {
        let Some(deadline) = self.machine.borrow().poll_timeout() else {
            if self.scheduled.take().is_some() {
                if let Some(timer) = self.timer.borrow_mut().as_mut() {
                    timer.cancel();
                }
            }
            return;
        };
        if self.scheduled.get().is_some_and(|s| s <= deadline) {
            return;
        }
        self.scheduled.set(Some(deadline));
        if let Some(timer) = self.timer.borrow_mut().as_mut() {
            timer.schedule(deadline.saturating_sub(now_ms()));
        }
    }

    /// Releases the browser resources once the client has ended.
    fn shut_down(&self) {
        drop(self.socket.borrow_mut().take());
        drop(self.timer.borrow_mut().take());
        drop(self.network.borrow_mut().take());
        self.scheduled.set(None);
        // Dropped last: this may be the final strong reference, so nothing may follow it.
        let me = self.alive.borrow_mut().take();
        drop(me);
    }
}
