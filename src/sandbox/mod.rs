//! The sandbox carrier: a local stand-in for Telnyx Call Control.

pub mod script;
