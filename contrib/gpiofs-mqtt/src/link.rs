//! The connection to the broker: options from the config (URL, TLS, login,
//! last will) and the task that drives rumqttc's event loop, reconnecting
//! with backoff and logging only when the link changes state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use log::{debug, info, warn};
use rumqttc::{Event, EventLoop, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::mpsc;

use crate::config::Broker;
use crate::topics::{OFFLINE, Topics};

/// The CA bundle used for mqtts:// when the config names none (Debian's).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Publishes written but not yet acknowledged, at most.
pub const IN_FLIGHT: u16 = 256;

#[derive(Debug)]
pub enum LinkError {
    CaFile { path: String, error: std::io::Error },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::CaFile { path, error } => write!(f, "broker.ca_file {path}: {error}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// The rumqttc options for `broker` (a URL the config already checked).
pub fn options(
    broker: &Broker,
    client_id: &str,
    topics: &Topics,
) -> Result<MqttOptions, LinkError> {
    let (tls, rest) = match broker.url.strip_prefix("mqtts://") {
        Some(rest) => (true, rest),
        None => (false, broker.url.trim_start_matches("mqtt://")),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(1883)),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_inflight(IN_FLIGHT)
        .set_last_will(LastWill::new(
            topics.status(),
            OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &broker.username {
        options.set_credentials(user, broker.password.as_deref().unwrap_or(""));
    }
    if tls {
        let path = broker
            .ca_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| SYSTEM_CA_FILE.to_string());
        let ca = std::fs::read(&path).map_err(|error| LinkError::CaFile { path, error })?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: None,
        }));
    }
    Ok(options)
}

/// What the link tells the bridge, in the order it happened.
#[derive(Debug)]
pub enum LinkNews {
    /// Connected; `session` tells this connection from later ones.
    Up {
        session: u64,
    },
    /// The connection dropped: what the client held is forgotten.
    Down,
    Event(Event),
}

/// Counts connections and drops. The bridge hands messages to the client
/// only while the session it saw come up is still the current one: the
/// count moves the moment a drop is seen, before the bridge hears of it.
#[derive(Debug, Clone, Default)]
pub struct Session(Arc<AtomicU64>);

impl Session {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Drives the event loop until the bridge stops listening.
pub async fn run(
    mut eventloop: EventLoop,
    session: Session,
    news: mpsc::UnboundedSender<LinkNews>,
    url: String,
) {
    let mut backoff = FIRST_BACKOFF;
    // None before the first attempt; then whether the link is up.
    let mut up: Option<bool> = None;
    loop {
        let sent = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let s = session.next();
                info!("connected to {url}");
                up = Some(true);
                backoff = FIRST_BACKOFF;
                news.send(LinkNews::Up { session: s })
            }
            Ok(event) => news.send(LinkNews::Event(event)),
            Err(e) => {
                session.next();
                match up {
                    Some(true) => warn!(
                        "lost the broker {url}: {e}; reconnecting with backoff (up to {MAX_BACKOFF:?})"
                    ),
                    None => warn!(
                        "cannot reach the broker {url}: {e}; retrying with backoff (up to {MAX_BACKOFF:?})"
                    ),
                    Some(false) => debug!("{url}: {e}; next try in {backoff:?}"),
                }
                let was_up = up == Some(true);
                up = Some(false);
                if was_up && news.send(LinkNews::Down).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                Ok(())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
