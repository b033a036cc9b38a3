//! Smart Chat's domain and its adapters.
//!
//! The domain modules (`channel`, `chat`, `whatsapp`, `protocol`, …) know
//! nothing of AWS; the services (`inbound`, `dashboard`) work over the
//! ports in `store`; `aws` implements those ports.

pub mod assignment;
pub mod auth;
pub mod aws;
pub mod channel;
pub mod chat;
pub mod chat_list;
pub mod config;
pub mod customer;
pub mod dashboard;
pub mod executive;
pub mod fanout;
pub mod http;
pub mod inbound;
pub mod login;
pub mod metrics;
mod newtype;
pub mod outbound;
pub mod protocol;
pub mod provider;
pub mod repair;
pub mod secret;
pub mod sending;
pub mod sla;
pub mod store;
pub mod tags;
pub mod telemetry;
pub mod views;
pub mod webhook_auth;
pub mod whatsapp;
