//! A whole local stack started by a tool for itself, in `make dev`'s
//! shape on free loopback ports: DynamoDB Local, one moto for SQS and
//! another for EventBridge, the gateway with four inbound pollers and its
//! schedules. The load bench and the start-up measurement run on one, so
//! neither needs `make dev` running.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::emulators::{Emulator, Endpoints, Kind};
use crate::{Config, DevAdmin, Running};

/// The running stack; the emulators stop when it is dropped.
pub struct OwnStack {
    pub running: Running,
    pub endpoints: Endpoints,
    _emulators: Vec<Emulator>,
}

/// The workspace this crate is part of.
pub fn workspace() -> PathBuf {
    let w = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    w.canonicalize().unwrap_or(w)
}

impl OwnStack {
    /// Starts the emulators (logs in `.local/logs/{name}`) and the gateway
    /// with `admin` as its dev admin.
    pub async fn start(name: &str, admin: DevAdmin) -> anyhow::Result<Self> {
        Self::start_with(name, admin, |_| {}).await
    }

    /// [`OwnStack::start`], the gateway's configuration changed by `tweak`
    /// first.
    pub async fn start_with(
        name: &str,
        admin: DevAdmin,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let workspace = workspace();
        let logs = workspace.join(".local/logs").join(name);
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut emulators = Vec::new();
        for kind in [
            Kind::dynamodb_local(&workspace),
            Kind::moto(&workspace),
            Kind::moto(&workspace),
        ] {
            emulators.push(Emulator::start(kind, any, &logs, |_, _| {}).await?);
        }
        let endpoints = Endpoints {
            dynamodb: emulators[0].endpoint(),
            sqs: emulators[1].endpoint(),
            eventbridge: emulators[2].endpoint(),
        };
        let mut cfg = Config::ephemeral(endpoints.clone(), &workspace);
        cfg.dev_admin = Some(admin);
        cfg.inbound_pollers = 4;
        cfg.schedule_period = None;
        tweak(&mut cfg);
        let running = crate::start(cfg).await?;
        Ok(Self {
            running,
            endpoints,
            _emulators: emulators,
        })
    }
}
