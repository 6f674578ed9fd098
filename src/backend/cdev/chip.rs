//! GPIO chips: the `gpiochipN` nodes in `/dev` and the chips we hold open.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::cdev_error;
use super::sysfs::{self, SYS};
use crate::backend::{ChipInfo, ChipName, Result};

pub(super) const DEV: &str = "/dev";

/// The chips announced to the layer above, by name.
pub(super) type Chips = HashMap<String, Arc<ChipHandle>>;

/// `N` of a `gpiochipN` device name.
pub(super) fn chip_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("gpiochip")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `gpiochipN` names in `dir`, in the kernel's order (by N).
pub(super) fn list_chips(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((chip_number(&name)?, name))
        })
        .collect();
    names.sort_unstable();
    names.into_iter().map(|(_, n)| n).collect()
}

/// An open chip. Holding its fd pins this very chip: if it is removed and
/// another takes its name, ioctls on this fd fail with ENODEV instead of
/// reaching the newcomer.
pub(super) struct ChipHandle {
    pub(super) name: ChipName,
    /// Tells chips of the same name apart over time.
    pub(super) id: u64,
    pub(super) path: PathBuf,
    pub(super) label: String,
    line_names: Vec<String>,
    pub(super) chip: gpiocdev::Chip,
}

impl ChipHandle {
    pub(super) fn open(name: &str) -> Result<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let path = Path::new(DEV).join(name);
        let chip = gpiocdev::Chip::from_path(&path)
            .map_err(|e| cdev_error(format!("open {}", path.display()), &e))?;
        let info = chip
            .info()
            .map_err(|e| cdev_error(format!("{name}: chip info"), &e))?;
        // A line whose info cannot be read just has no name.
        let line_names = (0..info.num_lines)
            .map(|offset| chip.line_info(offset).map(|i| i.name).unwrap_or_default())
            .collect();
        Ok(Self {
            name: name.into(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path: chip.path().to_path_buf(),
            label: info.label,
            line_names,
            chip,
        })
    }

    pub(super) fn num_lines(&self) -> u32 {
        self.line_names.len() as u32
    }

    /// False once the kernel has removed this chip.
    pub(super) fn is_alive(&self) -> bool {
        self.chip.info().is_ok()
    }

    /// What to announce for this chip, with its place in the kernel's own
    /// sysfs; `known` tells look-alike chips of one device apart.
    pub(super) fn info(&self, known: &Chips) -> ChipInfo {
        let (sysfs_base, device_path) = sysfs::locate_in_sysfs(
            Path::new(SYS),
            &self.name,
            &self.label,
            self.num_lines(),
            &|n| identify(known, n),
        );
        ChipInfo {
            name: self.name.clone(),
            label: self.label.clone(),
            line_names: self.line_names.clone(),
            sysfs_base,
            device_path,
        }
    }
}

/// The label and size of another chip, from `known` or else from `/dev`.
fn identify(known: &Chips, name: &str) -> Option<(String, u32)> {
    if let Some(chip) = known.get(name) {
        return Some((chip.label.clone(), chip.num_lines()));
    }
    let chip = gpiocdev::Chip::from_path(Path::new(DEV).join(name)).ok()?;
    let info = chip.info().ok()?;
    Some((info.label, info.num_lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cdev::test_dir::{scratch_dir, write};

    #[test]
    fn chip_numbers() {
        assert_eq!(chip_number("gpiochip0"), Some(0));
        assert_eq!(chip_number("gpiochip12"), Some(12));
        for bad in [
            "gpiochip",
            "gpiochip1a",
            "gpiochip-1",
            "gpio0",
            "xgpiochip0",
            "",
        ] {
            assert_eq!(chip_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn chips_list_in_kernel_order() {
        let (_tmp, dir) = scratch_dir();
        for name in ["gpiochip10", "gpiochip2", "ttyS0", "gpiochip0", "gpiochipx"] {
            write(&dir.join(name), "");
        }
        assert_eq!(
            list_chips(&dir),
            vec!["gpiochip0", "gpiochip2", "gpiochip10"]
        );
    }
}
