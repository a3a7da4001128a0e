//! Front doors: each turns a byte stream from the network into a call to
//! the one connection handler, [`crate::broker::connection::serve`].

pub mod tcp;
pub(crate) mod throttle;
pub mod tls;
pub mod ws;
mod ws_frame;
