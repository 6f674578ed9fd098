//! The TOML configuration: what it may say, its defaults, and the checks
//! that name the offending field (`input[1].bias: ...`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Visitor};

/// Edges kept while the broker is unreachable, when the file says nothing.
pub const DEFAULT_QUEUE: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub broker: Broker,
    /// The gpiofs (or kernel sysfs) class directory.
    #[serde(default = "default_tree")]
    pub tree: PathBuf,
    /// The `N` of every topic; the host name when absent.
    pub node_id: Option<String>,
    /// The `P` of every topic.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// At most this many edges wait for the broker; the oldest go first.
    #[serde(default = "default_queue")]
    pub queue: usize,
    #[serde(default)]
    pub discovery: Discovery,
    #[serde(default, rename = "input")]
    pub inputs: Vec<PinConfig>,
    #[serde(default, rename = "output")]
    pub outputs: Vec<PinConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broker {
    /// `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
    pub url: String,
    /// PEM file of the CA that signed the broker's certificate (mqtts);
    /// the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `gpiofs-mqtt-NODE` when absent.
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_discovery_prefix")]
    pub prefix: String,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            enabled: true,
            prefix: default_discovery_prefix(),
        }
    }
}

/// One `[[input]]` or `[[output]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinConfig {
    pub line: Line,
    /// The `X` of the pin's topics.
    pub name: String,
    /// What Home Assistant shows; `name` when absent.
    pub friendly_name: Option<String>,
    /// Home Assistant's device_class (door, motion, outlet, ...).
    pub device_class: Option<String>,
    pub bias: Option<Bias>,
    pub debounce_us: Option<u32>,
    pub active_low: Option<bool>,
    /// Outputs only: the level set at start.
    pub initial: Option<Level>,
}

/// A line by global number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Line {
    Number(u32),
    Name(String),
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Number(n) => write!(f, "{n}"),
            Line::Name(name) => f.write_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LineVisitor;
        impl Visitor<'_> for LineVisitor {
            type Value = Line;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a global GPIO number or a line name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Line, E> {
                u32::try_from(v)
                    .map(Line::Number)
                    .map_err(|_| E::custom(format!("{v} is not a GPIO number")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Line, E> {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(E::custom(format!("{v:?} is not a line name")));
                }
                Ok(Line::Name(v.to_string()))
            }
        }
        d.deserialize_any(LineVisitor)
    }
}

/// The values of gpiofs's `bias` file.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Bias {
    AsIs,
    Disabled,
    PullUp,
    PullDown,
}

impl Bias {
    pub fn as_str(self) -> &'static str {
        match self {
            Bias::AsIs => "as-is",
            Bias::Disabled => "disabled",
            Bias::PullUp => "pull-up",
            Bias::PullDown => "pull-down",
        }
    }
}

/// A logical level as MQTT and Home Assistant spell it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Level {
    #[serde(rename = "ON")]
    On,
    #[serde(rename = "OFF")]
    Off,
}

/// A configuration that cannot be used, and which field says so.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Field {
        field: String,
        problem: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => write!(f, "{}: {error}", path.display()),
            ConfigError::Field { field, problem } => write!(f, "{field}: {problem}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn field(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

fn default_tree() -> PathBuf {
    PathBuf::from("/sys/class/gpio")
}
fn default_prefix() -> String {
    "gpiofs".into()
}
fn default_queue() -> usize {
    DEFAULT_QUEUE
}
fn default_discovery_prefix() -> String {
    "homeassistant".into()
}
fn yes() -> bool {
    true
}

impl Config {
    /// Reads, parses and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Config::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de =
            toml::Deserializer::parse(text).map_err(|e| field("(file)", toml_problem(&e, text)))?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let problem = toml_problem(e.inner(), text);
            let mut path = e.path().to_string();
            // A missing field is reported at its table; name the field.
            if let Some(missing) = e.inner().message().strip_prefix("missing field `") {
                let name = missing.split('`').next().unwrap_or_default();
                path = if path == "." {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
            }
            field(
                if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                problem,
            )
        })?;
        config.check()?;
        Ok(config)
    }

    /// The checks serde cannot express.
    fn check(&self) -> Result<(), ConfigError> {
        let url = &self.broker.url;
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("mqtts://"))
            .ok_or_else(|| {
                field(
                    "broker.url",
                    format!("{url:?} is neither mqtt://HOST[:PORT] nor mqtts://HOST[:PORT]"),
                )
            })?;
        if rest.is_empty() || rest.contains('/') {
            return Err(field(
                "broker.url",
                format!("{url:?}: expected mqtt://HOST[:PORT]"),
            ));
        }
        if let Some((_, port)) = rest.rsplit_once(':') {
            port.parse::<u16>()
                .map_err(|_| field("broker.url", format!("{port:?} is not a port")))?;
        }
        if let Some(ca) = &self.broker.ca_file {
            if !url.starts_with("mqtts://") {
                return Err(field("broker.ca_file", "only mqtts:// uses a CA"));
            }
            if !ca.is_file() {
                return Err(field(
                    "broker.ca_file",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
        if self.broker.password.is_some() && self.broker.username.is_none() {
            return Err(field("broker.password", "a password needs a username"));
        }
        if let Some(node) = &self.node_id {
            check_id("node_id", node)?;
        }
        check_topic_level("prefix", &self.prefix)?;
        check_topic_level("discovery.prefix", &self.discovery.prefix)?;
        if self.queue == 0 {
            return Err(field("queue", "must be at least 1"));
        }
        if self.inputs.is_empty() && self.outputs.is_empty() {
            return Err(field(
                "input",
                "no [[input]] or [[output]] pins: nothing to bridge",
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut lines = std::collections::HashSet::new();
        for (kind, pins) in [("input", &self.inputs), ("output", &self.outputs)] {
            for (i, pin) in pins.iter().enumerate() {
                let at = |f: &str| format!("{kind}[{i}].{f}");
                check_id(&at("name"), &pin.name)?;
                if !names.insert(pin.name.as_str()) {
                    return Err(field(at("name"), format!("{:?} names two pins", pin.name)));
                }
                if !lines.insert(&pin.line) {
                    return Err(field(
                        at("line"),
                        format!("line {} is configured twice", pin.line),
                    ));
                }
                if kind == "input" && pin.initial.is_some() {
                    return Err(field(at("initial"), "only outputs have an initial level"));
                }
                if kind == "output" && pin.debounce_us.is_some() {
                    return Err(field(at("debounce_us"), "only inputs are debounced"));
                }
            }
        }
        Ok(())
    }
}

/// Node ids and pin names become topic levels and Home Assistant object
/// ids, which allow `[a-zA-Z0-9_-]` only.
fn check_id(name: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(field(
            name,
            format!("{value:?} may use only letters, digits, _ and -"),
        ));
    }
    Ok(())
}

fn check_topic_level(name: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty()
        || value.contains(['+', '#', '\0'])
        || value.starts_with('/')
        || value.ends_with('/')
    {
        return Err(field(
            name,
            format!("{value:?} is not a topic prefix (no +, #, leading or trailing /)"),
        ));
    }
    Ok(())
}

/// The message of a TOML error with the line it points at.
fn toml_problem(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{} (line {line})", e.message().trim_end())
        }
        None => e.message().trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[broker]\nurl = \"mqtt://127.0.0.1\"\n[[input]]\nline = 512\nname = \"door\"\n";

    fn problem(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.tree, Path::new("/sys/class/gpio"));
        assert_eq!(c.prefix, "gpiofs");
        assert_eq!(c.queue, DEFAULT_QUEUE);
        assert!(c.discovery.enabled);
        assert_eq!(c.discovery.prefix, "homeassistant");
        assert_eq!(c.inputs[0].line, Line::Number(512));
        assert!(c.outputs.is_empty());
    }

    #[test]
    fn lines_by_number_or_name() {
        let c = Config::parse(&MINIMAL.replace("512", "\"GPIO17\"")).unwrap();
        assert_eq!(c.inputs[0].line, Line::Name("GPIO17".into()));
        assert!(problem(&MINIMAL.replace("512", "-3")).starts_with("input[0].line: "));
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MINIMAL.replace("name = \"door\"", "name = \"door\"\nbias = \"pullup\"");
        let p = problem(&bad);
        assert!(
            p.starts_with("input[0].bias: unknown variant `pullup`"),
            "{p}"
        );
        assert!(p.contains("(line 6)"), "{p}");
        assert!(problem(&MINIMAL.replace("url", "uri")).starts_with("broker.uri: unknown field"));
        assert!(problem(&MINIMAL.replace("mqtt://", "http://")).starts_with("broker.url: "));
        assert!(problem(&MINIMAL.replace("door", "front door")).starts_with("input[0].name: "));
        let twice = format!("{MINIMAL}[[output]]\nline = 513\nname = \"door\"\n");
        assert!(problem(&twice).starts_with("output[0].name: "));
        let initial = MINIMAL.replace("name = \"door\"", "name = \"door\"\ninitial = \"ON\"");
        assert!(problem(&initial).starts_with("input[0].initial: "));
        assert!(problem(&format!("queue = 0\n{MINIMAL}")).starts_with("queue: "));
        assert!(problem("[broker\n").starts_with("(file): "));
    }
}
