//! End-to-end tests: each starts its own moto server and local gateway on
//! loopback, and drives them over real HTTP and WebSocket.

mod admin_routes;
mod assignment;
mod auth;
mod authority;
mod bad_input;
mod chat_lists;
mod context;
mod dashboard_events;
mod dashboard_web;
mod delivery_guarantees;
mod discount_bot;
mod discount_routes;
mod domain_events;
mod faults;
mod forwarding;
mod handlers;
mod inbound_shapes;
mod internal_webhooks;
mod live_dashboard;
mod local_stack;
mod login_budgets;
mod logs;
mod media;
mod notes;
mod outbound;
mod rating;
mod request_caps;
mod request_counts;
mod rides;
mod secrets;
mod sla;
mod soak;
mod status_and_counters;
mod tags;
mod webhook_security;
