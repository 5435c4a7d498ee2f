//! Load runs against a running `ivrx serve --sandbox`: which caller scripts to
//! play and in what proportions ([`mix`]), the server's audit endpoints that
//! check the store afterwards ([`audit`]), and the report a run produces
//! ([`report`]). The driver itself is `ivrx dial --sandbox --load`.

pub mod audit;
pub mod mix;
pub mod report;

pub use mix::{bundled, CallerScript, Mix, MixError, BUNDLED, DEFAULT_MIX};
pub use report::{CallOutcome, LoadReport};
