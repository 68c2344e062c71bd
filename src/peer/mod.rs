//! The peer daemon's engine: piece picking, peer-wire sessions, the link
//! to the tracker and the control socket, all driven by the reactor.

pub mod picker;
