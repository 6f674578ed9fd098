//! The gpiofs tree as the bridge uses it: export, configure, read and
//! write `value`. Files only, never the character device, so every other
//! program keeps sharing the lines.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use log::warn;

use crate::config::{Line, PinConfig};

/// The class directory (`/sys/class/gpio` or a gpiofs mount).
#[derive(Debug, Clone)]
pub struct Tree {
    root: PathBuf,
}

#[derive(Debug)]
pub enum TreeError {
    /// No `export` file: gpiofs is not mounted there.
    NotATree(PathBuf),
    /// No chip has this line.
    NoSuchLine(Line),
    /// The line is held outside the tree (a character-device user).
    Busy(Line),
    /// Exporting a name made no single new `gpio<N>` (another program
    /// exported at the same moment).
    Unresolved(String),
    Io {
        path: PathBuf,
        error: io::Error,
    },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::NotATree(p) => write!(
                f,
                "{}: no export file (is gpiofs mounted there?)",
                p.display()
            ),
            TreeError::NoSuchLine(l) => write!(f, "line {l}: no chip has it"),
            TreeError::Busy(l) => write!(f, "line {l}: held by a program outside the tree"),
            TreeError::Unresolved(n) => write!(
                f,
                "line {n}: exported, but its gpio<N> directory is ambiguous"
            ),
            TreeError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for TreeError {}

fn io_error(path: &Path, error: io::Error) -> TreeError {
    TreeError::Io {
        path: path.to_owned(),
        error,
    }
}

impl Tree {
    pub fn open(root: &Path) -> Result<Tree, TreeError> {
        if !root.join("export").exists() {
            return Err(TreeError::NotATree(root.to_owned()));
        }
        Ok(Tree {
            root: root.to_owned(),
        })
    }

    pub fn gpio_file(&self, gpio: u32, attr: &str) -> PathBuf {
        self.root.join(format!("gpio{gpio}")).join(attr)
    }

    /// Writes `text` in one write(2), as `echo` does.
    fn write_path(path: &Path, text: &str) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(text.as_bytes())
    }

    pub fn read(&self, gpio: u32, attr: &str) -> Result<String, TreeError> {
        let path = self.gpio_file(gpio, attr);
        let text = fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        Ok(text.trim_end().to_string())
    }

    pub fn write(&self, gpio: u32, attr: &str, text: &str) -> Result<(), TreeError> {
        let path = self.gpio_file(gpio, attr);
        Self::write_path(&path, text).map_err(|e| io_error(&path, e))
    }

    /// The logical level (active_low applied), as `value` says.
    pub fn level(&self, gpio: u32) -> Result<bool, TreeError> {
        Ok(self.read(gpio, "value")? != "0")
    }

    pub fn set_level(&self, gpio: u32, on: bool) -> Result<(), TreeError> {
        self.write(gpio, "value", if on { "1" } else { "0" })
    }

    /// The numbers of the exported lines.
    fn exported(&self) -> Result<BTreeSet<u32>, TreeError> {
        let dir = fs::read_dir(&self.root).map_err(|e| io_error(&self.root, e))?;
        Ok(dir
            .filter_map(|entry| {
                entry
                    .ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("gpio")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Exports `line` (a line already exported is shared, not an error)
    /// and returns its global number.
    pub fn export(&self, line: &Line) -> Result<u32, TreeError> {
        let export = self.root.join("export");
        let before = self.exported()?;
        let text = line.to_string();
        match Self::write_path(&export, &text) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err(TreeError::NoSuchLine(line.clone()));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => match line {
                Line::Number(n) if before.contains(n) => return Ok(*n),
                Line::Number(_) => return Err(TreeError::Busy(line.clone())),
                Line::Name(name) => {
                    // The tree does not say which gpio<N> a name is, so an
                    // exported name is learnt by exporting it again.
                    warn!(
                        "line {name} is already exported: unexporting and exporting it again to learn its number (give the number to avoid this)"
                    );
                    Self::write_path(&self.root.join("unexport"), name)
                        .map_err(|_| TreeError::Busy(line.clone()))?;
                    return self.export(line);
                }
            },
            Err(e) => return Err(io_error(&export, e)),
        }
        match line {
            Line::Number(n) => Ok(*n),
            Line::Name(name) => {
                let new: Vec<u32> = self.exported()?.difference(&before).copied().collect();
                match new[..] {
                    [gpio] => Ok(gpio),
                    _ => Err(TreeError::Unresolved(name.clone())),
                }
            }
        }
    }

    /// Exports and configures an input; returns its number.
    pub fn setup_input(&self, line: &Line, pin: &PinConfig) -> Result<u32, TreeError> {
        let gpio = self.export(line)?;
        self.write(gpio, "direction", "in")?;
        self.common_attrs(gpio, pin)?;
        if let Some(us) = pin.debounce_us {
            self.write(gpio, "debounce_us", &us.to_string())?;
        }
        Ok(gpio)
    }

    /// Exports and configures an output, driving its initial level (or
    /// OFF) without a glitch when it was not an output yet.
    pub fn setup_output(&self, line: &Line, pin: &PinConfig) -> Result<u32, TreeError> {
        let gpio = self.export(line)?;
        self.common_attrs(gpio, pin)?;
        let initial = pin.initial.map(|level| level == crate::config::Level::On);
        if initial.is_some() || self.read(gpio, "direction")? != "out" {
            // direction high/low set raw levels: apply active_low here.
            let active_low = self.read(gpio, "active_low")? == "1";
            let raw_high = initial.unwrap_or(false) != active_low;
            self.write(gpio, "direction", if raw_high { "high" } else { "low" })?;
        }
        Ok(gpio)
    }

    fn common_attrs(&self, gpio: u32, pin: &PinConfig) -> Result<(), TreeError> {
        if let Some(active_low) = pin.active_low {
            self.write(gpio, "active_low", if active_low { "1" } else { "0" })?;
        }
        if let Some(bias) = pin.bias {
            self.write(gpio, "bias", bias.as_str())?;
        }
        Ok(())
    }
}
