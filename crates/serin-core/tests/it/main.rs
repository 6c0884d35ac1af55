//! Integration tests of the engine: whole rollouts in virtual time, and properties.

mod deletion;
mod hooks;
mod migration;
mod properties;
mod requests;
mod rollouts;
mod support;
