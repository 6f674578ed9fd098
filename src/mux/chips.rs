//! Present chips and the global numbers they own.

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::ChipInfo;

/// Where the kernel starts dynamic bases since 6.6.
const DYNAMIC_BASE: u32 = 512;

/// A present chip and the base of its global numbers.
#[derive(Debug)]
pub struct Chip {
    /// Stable while the chip is present; never reused.
    pub id: u32,
    pub base: u32,
    pub info: ChipInfo,
}

impl Chip {
    fn range(&self) -> std::ops::Range<u32> {
        self.base..self.base + self.info.num_lines()
    }
}

/// Chips in base order, with bases assigned as the kernel does.
pub(super) struct ChipTable {
    chips: Vec<Arc<Chip>>,
    pinned: HashMap<String, u32>,
    next_id: u32,
}

impl ChipTable {
    /// `pi_numbers`: the Raspberry Pi's controller gets base 0 unless
    /// pinned otherwise (whichever such chip appears first).
    pub(super) fn new(mut pinned: HashMap<String, u32>, pi_numbers: bool) -> Self {
        if pi_numbers {
            for label in super::pi::CONTROLLER_LABELS {
                pinned.entry(label.to_string()).or_insert(0);
            }
        }
        Self {
            chips: Vec::new(),
            pinned,
            next_id: 1,
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<Chip>> {
        self.chips.iter()
    }

    pub(super) fn by_name(&self, name: &str) -> Option<&Arc<Chip>> {
        self.chips.iter().find(|c| &*c.info.name == name)
    }

    pub(super) fn locate(&self, global: u32) -> Option<(Arc<Chip>, u32)> {
        self.chips
            .iter()
            .find(|c| c.range().contains(&global))
            .map(|c| (c.clone(), global - c.base))
    }

    /// Adds a chip at its pinned base, else the kernel's own sysfs base,
    /// else the first free range from 512 (the kernel's first fit).
    pub(super) fn add(&mut self, info: ChipInfo) -> Arc<Chip> {
        let wanted = self
            .pinned
            .get(&info.label)
            .copied()
            .or(info.sysfs_base)
            .filter(|&base| {
                let free = self.is_free(base, info.num_lines());
                if !free {
                    log::warn!(
                        "chip {} ({}): base {base} overlaps another chip; using the first free base",
                        info.name,
                        info.label
                    );
                }
                free
            });
        let base = wanted.unwrap_or_else(|| self.first_fit(info.num_lines()));
        let chip = Arc::new(Chip {
            id: self.next_id,
            base,
            info,
        });
        self.next_id += 1;
        let at = self.chips.partition_point(|c| c.base < base);
        self.chips.insert(at, chip.clone());
        chip
    }

    pub(super) fn remove(&mut self, name: &str) -> Option<Arc<Chip>> {
        let at = self.chips.iter().position(|c| &*c.info.name == name)?;
        Some(self.chips.remove(at))
    }

    fn is_free(&self, base: u32, count: u32) -> bool {
        base.checked_add(count).is_some()
            && self
                .chips
                .iter()
                .all(|c| base + count <= c.base || c.range().end <= base)
    }

    fn first_fit(&self, count: u32) -> u32 {
        let mut base = DYNAMIC_BASE;
        for chip in &self.chips {
            if chip.range().end <= base {
                continue;
            }
            if chip.base >= base + count {
                break;
            }
            base = chip.range().end;
        }
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(label: &str, lines: usize, sysfs_base: Option<u32>) -> ChipInfo {
        ChipInfo {
            name: format!("chip-{label}").into(),
            label: label.into(),
            line_names: vec![String::new(); lines],
            sysfs_base,
            device_path: None,
        }
    }

    #[test]
    fn bases_are_first_fit_from_512() {
        let mut table = ChipTable::new(HashMap::new(), false);
        assert_eq!(table.add(info("a", 32, None)).base, 512);
        assert_eq!(table.add(info("b", 8, None)).base, 544);
        table.remove("chip-a");
        assert_eq!(table.add(info("c", 16, None)).base, 512);
        assert_eq!(table.add(info("d", 16, None)).base, 528);
        assert_eq!(table.add(info("e", 1, None)).base, 552);
    }

    #[test]
    fn pinned_and_sysfs_bases_win_unless_they_overlap() {
        let pinned = HashMap::from([("pi".to_string(), 0)]);
        let mut table = ChipTable::new(pinned, false);
        assert_eq!(table.add(info("pi", 54, None)).base, 0);
        assert_eq!(table.add(info("k", 8, Some(600))).base, 600);
        assert_eq!(table.add(info("x", 8, Some(604))).base, 512);
        assert_eq!(
            table.locate(605).map(|(c, o)| (c.info.label.clone(), o)),
            Some(("k".into(), 5))
        );
        assert!(table.locate(54).is_none());
    }

    #[test]
    fn pi_numbers_give_the_controller_base_0_whenever_it_appears() {
        let mut table = ChipTable::new(HashMap::new(), true);
        assert_eq!(table.add(info("expander", 16, None)).base, 512);
        assert_eq!(table.add(info("pinctrl-bcm2711", 58, None)).base, 0);
        // An explicit --base wins over --pi-numbers.
        let pinned = HashMap::from([("pinctrl-rp1".to_string(), 100)]);
        let mut table = ChipTable::new(pinned, true);
        assert_eq!(table.add(info("pinctrl-rp1", 54, None)).base, 100);
    }
}
