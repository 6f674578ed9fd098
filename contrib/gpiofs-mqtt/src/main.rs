//! gpiofs-mqtt: the pins of a gpiofs tree on an MQTT broker, with Home
//! Assistant discovery. It is one more client of the tree (events streams
//! for inputs, `value` writes for outputs), so every local program keeps
//! sharing the same lines.

mod bridge;
mod config;
mod discovery;
mod link;
mod queue;
mod topics;
mod tree;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use log::error;
use tokio::sync::mpsc;

use crate::bridge::{Bridge, setup_pins};
use crate::config::Config;
use crate::link::Session;
use crate::queue::Outbox;
use crate::topics::Topics;
use crate::tree::Tree;

/// Exit status for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;
/// Input edges that may wait between the reader threads and the bridge.
const INPUT_CHANNEL: usize = 4096;
/// Requests that may wait in the MQTT client's channel.
const CLIENT_CHANNEL: usize = 512;

/// Bridge the pins of a gpiofs tree to an MQTT broker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The TOML configuration. Example: --config /etc/gpiofs-mqtt.toml
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration, print what it means, and exit (2 if bad).
    #[arg(long)]
    check_config: bool,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gpiofs-mqtt: bad config {}: {e}", cli.config.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let node = match config.node_id.clone().map_or_else(host_node_id, Ok) {
        Ok(node) => node,
        Err(e) => {
            eprintln!(
                "gpiofs-mqtt: bad config {}: node_id: {e}",
                cli.config.display()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let topics = Topics::new(&config.prefix, &node);
    if cli.check_config {
        print_summary(&config, &node, &topics);
        return ExitCode::SUCCESS;
    }
    match run(config, node, topics) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config, node: String, topics: Topics) -> Result<(), Box<dyn std::error::Error>> {
    // rustls picks its crypto from the process default; ring is the one built in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tree = Tree::open(&config.tree)?;
    let pins = setup_pins(&config, &tree)?;
    let streams = pins
        .iter()
        .filter(|p| !p.output)
        .map(|p| watch::Stream::open(&tree, p.gpio))
        .collect::<Result<Vec<_>, _>>()?;
    let client_id = config
        .broker
        .client_id
        .clone()
        .unwrap_or_else(|| format!("gpiofs-mqtt-{node}"));
    let options = link::options(&config.broker, &client_id, &topics)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (client, eventloop) = rumqttc::AsyncClient::new(options, CLIENT_CHANNEL);
        let session = Session::default();
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        tokio::spawn(link::run(
            eventloop,
            session.clone(),
            link_tx,
            config.broker.url.clone(),
        ));
        let (input_tx, input_rx) = mpsc::channel(INPUT_CHANNEL);
        let inputs = pins.iter().enumerate().filter(|(_, p)| !p.output);
        for ((i, pin), stream) in inputs.zip(streams) {
            let (config, news) = (pin.config.clone(), input_tx.clone());
            watch::spawn(tree.clone(), i, pin.gpio, config, stream, news);
        }
        drop(input_tx);
        let bridge = Bridge {
            tree,
            topics,
            node,
            discovery: config.discovery.enabled.then_some(config.discovery.prefix),
            pins,
            client,
            session,
            outbox: Outbox::new(config.queue),
            queue_limit: config.queue,
        };
        bridge.run(input_rx, link_rx).await;
    });
    Ok(())
}

/// The host name up to its first dot, if it is a valid node id.
fn host_node_id() -> Result<String, String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| format!("no host name to default to ({e}); set node_id"))?;
    let node = host.trim().split('.').next().unwrap_or("").to_string();
    if node.is_empty()
        || !node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "the host name {host:?} is not a node id; set node_id"
        ));
    }
    Ok(node)
}

fn print_summary(config: &Config, node: &str, topics: &Topics) {
    println!("broker {}", config.broker.url);
    println!("tree {}", config.tree.display());
    println!("status {}", topics.status());
    for pin in &config.inputs {
        println!(
            "input {} (line {}): {} {}",
            pin.name,
            pin.line,
            topics.state(&pin.name),
            topics.event(&pin.name)
        );
    }
    for pin in &config.outputs {
        println!(
            "output {} (line {}): {} {}",
            pin.name,
            pin.line,
            topics.state(&pin.name),
            topics.set(&pin.name)
        );
    }
    match config.discovery.enabled {
        true => println!("discovery {}/+/{node}/+/config", config.discovery.prefix),
        false => println!("discovery off"),
    }
    println!("queue {} events", config.queue);
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Info,
        (false, 1) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let config = simplelog::ConfigBuilder::new()
        .add_filter_allow_str("gpiofs_mqtt")
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        // Colours only for a person: journald and log files get plain text.
        if std::io::stderr().is_terminal() {
            simplelog::ColorChoice::Auto
        } else {
            simplelog::ColorChoice::Never
        },
    );
}
