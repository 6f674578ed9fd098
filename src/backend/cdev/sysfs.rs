//! Where the running kernel's own sysfs has a chip: its legacy GPIO base
//! and its parent device (see the backend's docs for why through
//! `/sys/devices`).

use std::fs;
use std::path::{Path, PathBuf};

use super::chip::chip_number;

pub(super) const SYS: &str = "/sys";

/// Whether the running kernel has the legacy GPIO sysfs at all. Only
/// meaningful before gpiofs is mounted over `/sys/class/gpio`.
pub(super) fn kernel_has_gpio_sysfs() -> bool {
    Path::new(SYS).join("class/gpio/export").exists()
}

/// One legacy class device, `.../gpio/gpiochip<BASE>`.
struct ClassEntry {
    base: u32,
    label: String,
    ngpio: u32,
}

fn read_attr(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

fn class_entries(dir: &Path) -> Vec<ClassEntry> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().and_then(chip_number).is_some())
        .filter_map(|e| {
            let dir = e.path();
            Some(ClassEntry {
                base: read_attr(&dir.join("base"))?.parse().ok()?,
                label: read_attr(&dir.join("label"))?,
                ngpio: read_attr(&dir.join("ngpio"))?.parse().ok()?,
            })
        })
        .collect()
}

/// Where the running kernel's sysfs has chip `name`: its legacy base (if
/// the kernel has GPIO sysfs) and the parent device directory, i.e. the
/// directory that holds the `gpiochipN` device. `identify` gives the label
/// and line count of another chip, to tell apart chips of one device that
/// look alike.
pub(super) fn locate_in_sysfs(
    sys: &Path,
    name: &str,
    label: &str,
    ngpio: u32,
    identify: &dyn Fn(&str) -> Option<(String, u32)>,
) -> (Option<u32>, Option<PathBuf>) {
    // /sys/bus survives a mount over /sys/class/gpio, and canonicalizing
    // lands in /sys/devices, where the class devices live too.
    let Ok(gdev) = fs::canonicalize(sys.join("bus/gpio/devices").join(name)) else {
        return (None, None);
    };
    let parent = gdev.parent().map(Path::to_path_buf);
    (sysfs_base(&gdev, label, ngpio, identify), parent)
}

/// gpiolib-sysfs.c creates `gpiochip<BASE>` as a class device of the
/// chip's parent device (or of the gpio_device itself when there is no
/// parent), so it sits in the `gpio/` glue directory of one of those.
fn sysfs_base(
    gdev: &Path,
    label: &str,
    ngpio: u32,
    identify: &dyn Fn(&str) -> Option<(String, u32)>,
) -> Option<u32> {
    let matching = |dir: &Path| -> Vec<u32> {
        class_entries(dir)
            .into_iter()
            .filter(|e| e.label == label && e.ngpio == ngpio)
            .map(|e| e.base)
            .collect()
    };
    if let [base] = matching(&gdev.join("gpio"))[..] {
        return Some(base);
    }
    let parent = gdev.parent()?;
    let mut bases = matching(&parent.join("gpio"));
    match bases.len() {
        0 => return None,
        1 => return Some(bases[0]),
        _ => {}
    }
    // One device with several chips of the same label and size: gpiolib
    // hands out both device numbers and bases lowest-free at registration,
    // so the k-th such chip by number has the k-th base.
    bases.sort_unstable();
    let name = gdev.file_name()?.to_str()?;
    let mut twins: Vec<(u32, String)> = fs::read_dir(parent)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            Some((chip_number(&n)?, n))
        })
        .filter(|(_, n)| n == name || identify(n).is_some_and(|(l, g)| l == label && g == ngpio))
        .collect();
    twins.sort_unstable();
    if twins.len() != bases.len() {
        return None;
    }
    let rank = twins.iter().position(|(_, n)| n == name)?;
    Some(bases[rank])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cdev::test_dir::{scratch_dir, write};
    use std::os::unix::fs::symlink;

    /// Adds a gpio_device `name` under `parent` (relative to `sys`) and its
    /// bus link, like the kernel.
    fn fake_chip(sys: &Path, parent: &str, name: &str) {
        fs::create_dir_all(sys.join(parent).join(name)).unwrap();
        fs::create_dir_all(sys.join("bus/gpio/devices")).unwrap();
        symlink(
            Path::new("../../..").join(parent).join(name),
            sys.join("bus/gpio/devices").join(name),
        )
        .unwrap();
    }

    fn fake_class(dir: &Path, base: u32, label: &str, ngpio: u32) {
        let class = dir.join(format!("gpio/gpiochip{base}"));
        write(&class.join("base"), &format!("{base}\n"));
        write(&class.join("label"), &format!("{label}\n"));
        write(&class.join("ngpio"), &format!("{ngpio}\n"));
    }

    fn no_identity(_: &str) -> Option<(String, u32)> {
        None
    }

    #[test]
    fn sysfs_base_under_the_parent_device() {
        let (_tmp, sys) = scratch_dir();
        let sys = sys.as_path();
        let platform = sys.join("devices/platform/gpio-sim.0");
        fake_chip(sys, "devices/platform/gpio-sim.0", "gpiochip0");
        fake_chip(sys, "devices/platform/gpio-sim.0", "gpiochip1");
        fake_class(&platform, 512, "bank-a", 8);
        fake_class(&platform, 520, "bank-b", 4);

        let (base, device) = locate_in_sysfs(sys, "gpiochip1", "bank-b", 4, &no_identity);
        assert_eq!(base, Some(520));
        assert_eq!(device, Some(platform.clone()));
        assert!(device.unwrap().join("gpiochip1").is_dir());
        let (base, _) = locate_in_sysfs(sys, "gpiochip0", "bank-a", 8, &no_identity);
        assert_eq!(base, Some(512));

        // No class device (kernel without GPIO sysfs): a device path only.
        let (base, device) = locate_in_sysfs(sys, "gpiochip0", "other", 8, &no_identity);
        assert_eq!((base, device), (None, Some(platform)));
        // Not in sysfs at all.
        assert_eq!(
            locate_in_sysfs(sys, "gpiochip7", "x", 1, &no_identity),
            (None, None)
        );
    }

    #[test]
    fn sysfs_base_of_a_chip_without_parent() {
        let (_tmp, sys) = scratch_dir();
        let sys = sys.as_path();
        fake_chip(sys, "devices", "gpiochip4");
        fake_class(&sys.join("devices/gpiochip4"), 600, "lonely", 2);
        let (base, device) = locate_in_sysfs(sys, "gpiochip4", "lonely", 2, &no_identity);
        assert_eq!(base, Some(600));
        assert_eq!(device, Some(sys.join("devices")));
    }

    #[test]
    fn sysfs_base_of_look_alike_chips_pairs_by_rank() {
        let (_tmp, sys) = scratch_dir();
        let sys = sys.as_path();
        let mfd = sys.join("devices/platform/mfd.0");
        for name in ["gpiochip2", "gpiochip10", "gpiochip3"] {
            fake_chip(sys, "devices/platform/mfd.0", name);
        }
        fake_class(&mfd, 540, "twin", 8);
        fake_class(&mfd, 512, "twin", 8);
        fake_class(&mfd, 530, "other", 8);
        // gpiochip3 is "other": the twins are gpiochip2 and gpiochip10.
        let identify = |n: &str| {
            Some(match n {
                "gpiochip3" => ("other".to_string(), 8),
                _ => ("twin".to_string(), 8),
            })
        };
        let base = |name| locate_in_sysfs(sys, name, "twin", 8, &identify).0;
        assert_eq!(base("gpiochip2"), Some(512));
        assert_eq!(base("gpiochip10"), Some(540));
        // A sibling we cannot identify: no safe pairing.
        let partial = |n: &str| (n == "gpiochip3").then(|| ("other".to_string(), 8));
        assert_eq!(
            locate_in_sysfs(sys, "gpiochip2", "twin", 8, &partial).0,
            None
        );
        assert_eq!(
            locate_in_sysfs(sys, "gpiochip2", "twin", 8, &no_identity).0,
            None
        );
    }
}
