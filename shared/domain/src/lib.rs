//! Smart Chat's domain: what a chat is and what happens to it, the
//! WhatsApp formats, the dashboard protocol, sending, routing (assignment,
//! SLA, repair) and login — and the ports (traits) each feature needs from
//! storage, queues and the push channel, beside the feature.
//!
//! Nothing here depends on the AWS SDK, Lambda or an HTTP client: the
//! `adapters` crate implements the ports, the functions wire them.
//! Features depend on each other in one direction only (see
//! `tests/module_graph.rs`): `channel` and `customer` at the bottom, then
//! `executive`, `chat`, `whatsapp`, `protocol`, `sending`, `routing`, and
//! the services `inbound` and `dashboard` on top.

pub mod auth;
pub mod channel;
pub mod chat;
pub mod config;
pub mod customer;
pub mod dashboard;
pub mod discount;
pub mod error;
pub mod events;
pub mod executive;
pub mod inbound;
pub mod metrics;
mod newtype;
pub mod outbound;
pub mod protocol;
pub mod replies;
pub mod rides;
pub mod routing;
pub mod secret;
pub mod sending;
pub mod settings;
pub mod telemetry;
pub mod whatsapp;
