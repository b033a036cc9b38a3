//! Who answers which chat, and when someone must be told: round robin
//! assignment, the SLA watch over waiting customers, and the repair of
//! what those two keep (counters, open-chat counts).

pub mod assignment;
pub mod repair;
pub mod sla;
