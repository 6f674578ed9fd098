//! The tree as it stands now: which nodes exist and of what kind, where
//! symlinks lead, what directories hold, and lookup by name.

use fuser::FileType;

use super::Shared;
use super::entries::{
    self, CHIP_ENTRIES, Entry, GPIO_ENTRIES, PER_CHIP_ENTRIES, PER_CHIP_LINE_ENTRIES, SIM_ENTRIES,
};
use super::node::{ChipEntry, GpioEntry, Ino, Node, SimEntry};
use crate::mux::Chip;

/// X of a chip's `chip<X>` directory: the number of its /dev/gpiochipX
/// (the kernel's GPIO device id).
pub(super) fn device_number(chip: &Chip) -> Option<u32> {
    numbered(&chip.info.name, "gpiochip")
}

impl Shared {
    /// A node's inode number now: a line's entries by its current export,
    /// and none while the line is not exported. (Numbering a gone line's
    /// entry by no export would let a lookup racing unexport give the
    /// kernel an entry no later lookup or forget matches.)
    pub(super) fn ino(&self, node: Node) -> Option<u64> {
        match node.line() {
            Some(global) => Some(node.ino(self.mux.line(global)?.serial)),
            None => Some(node.ino(0)),
        }
    }

    /// The node an inode number names, if its line (if any) is exported
    /// under that number still; whether the node exists is for `kind`.
    pub(super) fn node(&self, ino: u64) -> Option<Node> {
        match Ino::decode(ino)? {
            Ino::Node(node) => Some(node),
            Ino::LineEntry {
                serial,
                entry,
                per_chip,
            } => {
                let global = self.mux.line_by_serial(serial)?.global;
                Some(match per_chip {
                    false => Node::Gpio { global, entry },
                    true => Node::PerChipLine { global, entry },
                })
            }
        }
    }

    /// The file type of a node that exists now, or `None`.
    pub(super) fn kind(&self, node: Node) -> Option<FileType> {
        let abi = self.options.abi;
        let device_is_link = match node {
            Node::Root => false,
            Node::Export | Node::Unexport => abi.legacy().then_some(false)?,
            Node::Sim => {
                self.sim.as_ref()?;
                false
            }
            Node::Chip { id, entry } | Node::PerChip { id, entry } => {
                let per_chip = matches!(node, Node::PerChip { .. });
                let chip = self.mux.chip(id)?;
                if !(if per_chip { abi.chip() } else { abi.legacy() })
                    || (per_chip && device_number(&chip).is_none())
                {
                    return None;
                }
                let is_link = chip.info.device_path.is_some();
                if entry == ChipEntry::DeviceChip && is_link {
                    return None;
                }
                is_link
            }
            Node::Gpio { global, .. } => {
                abi.legacy().then_some(())?;
                self.mux.line(global)?;
                false
            }
            Node::PerChipLine { global, .. } => {
                abi.chip().then_some(())?;
                self.mux.line(global)?;
                device_number(&self.mux.locate(global)?.0)?;
                false
            }
            Node::SimChip { chip } => {
                self.sim_lines(chip)?;
                false
            }
            Node::SimLine { chip, offset, .. } => {
                (offset < self.sim_lines(chip)?).then_some(false)?
            }
        };
        Some(node.kind(device_is_link))
    }

    /// How many lines simulated chip number `chip` has, if it exists.
    fn sim_lines(&self, chip: u32) -> Option<u32> {
        let chips = self.sim.as_ref()?.chips();
        chips.get(chip as usize).map(|&(_, lines)| lines)
    }

    pub(super) fn link_target(&self, node: Node) -> Option<String> {
        match node {
            Node::Chip {
                id,
                entry: ChipEntry::Device,
            }
            | Node::PerChip {
                id,
                entry: ChipEntry::Device,
            } => {
                let chip = self.mux.chip(id)?;
                chip.info
                    .device_path
                    .as_ref()
                    .map(|p| p.display().to_string())
            }
            Node::Gpio {
                global,
                entry: GpioEntry::Device,
            } => {
                let (chip, _) = self.mux.locate(global)?;
                Some(format!(
                    "../gpiochip{}/device/{}",
                    chip.base, chip.info.name
                ))
            }
            Node::Chip {
                entry: ChipEntry::Subsystem,
                ..
            }
            | Node::PerChip {
                entry: ChipEntry::Subsystem,
                ..
            }
            | Node::Gpio {
                entry: GpioEntry::Subsystem,
                ..
            } => Some("..".to_string()),
            _ => None,
        }
    }

    /// The children of a directory, with their names.
    pub(super) fn children(&self, dir: Node) -> Vec<(Node, String)> {
        match dir {
            Node::Root => {
                let chips = self.mux.chips();
                let mut list = vec![
                    (Node::Export, "export".to_string()),
                    (Node::Unexport, "unexport".to_string()),
                ];
                list.extend(chips.iter().map(|c| {
                    let node = Node::Chip {
                        id: c.id,
                        entry: ChipEntry::Dir,
                    };
                    (node, format!("gpiochip{}", c.base))
                }));
                list.extend(chips.iter().filter_map(|c| {
                    let node = Node::PerChip {
                        id: c.id,
                        entry: ChipEntry::Dir,
                    };
                    Some((node, format!("chip{}", device_number(c)?)))
                }));
                list.extend(self.mux.exported().into_iter().map(|global| {
                    let node = Node::Gpio {
                        global,
                        entry: GpioEntry::Dir,
                    };
                    (node, format!("gpio{global}"))
                }));
                if self.sim.is_some() {
                    list.push((Node::Sim, "sim".to_string()));
                }
                list
            }
            Node::Chip {
                id,
                entry: ChipEntry::Dir,
            } => entries(&CHIP_ENTRIES, |entry| Node::Chip { id, entry }),
            Node::PerChip {
                id,
                entry: ChipEntry::Dir,
            } => {
                let mut list = entries(&PER_CHIP_ENTRIES, |entry| Node::PerChip { id, entry });
                if let Some(chip) = self.mux.chip(id) {
                    let exported = self.mux.exported().into_iter();
                    list.extend(exported.filter_map(|global| {
                        let offset = global.checked_sub(chip.base)?;
                        let node = Node::PerChipLine {
                            global,
                            entry: GpioEntry::Dir,
                        };
                        (offset < chip.info.num_lines()).then(|| (node, format!("gpio{offset}")))
                    }));
                }
                list
            }
            Node::Chip {
                id,
                entry: ChipEntry::Device,
            }
            | Node::PerChip {
                id,
                entry: ChipEntry::Device,
            } => self
                .mux
                .chip(id)
                .map(|chip| {
                    let node = match dir {
                        Node::Chip { .. } => Node::Chip {
                            id,
                            entry: ChipEntry::DeviceChip,
                        },
                        _ => Node::PerChip {
                            id,
                            entry: ChipEntry::DeviceChip,
                        },
                    };
                    vec![(node, chip.info.name.to_string())]
                })
                .unwrap_or_default(),
            Node::PerChipLine {
                global,
                entry: GpioEntry::Dir,
            } => entries(&PER_CHIP_LINE_ENTRIES, |entry| Node::PerChipLine {
                global,
                entry,
            }),
            Node::Gpio {
                global,
                entry: GpioEntry::Dir,
            } => entries(&GPIO_ENTRIES, |entry| Node::Gpio { global, entry }),
            Node::Sim => self
                .sim
                .as_ref()
                .map(|sim| {
                    sim.chips()
                        .into_iter()
                        .zip(0..)
                        .map(|((label, _), chip)| (Node::SimChip { chip }, label))
                        .collect()
                })
                .unwrap_or_default(),
            Node::SimChip { chip } => (0..self.sim_lines(chip).unwrap_or(0))
                .map(|offset| {
                    let node = Node::SimLine {
                        chip,
                        offset,
                        entry: SimEntry::Dir,
                    };
                    (node, format!("line{offset}"))
                })
                .collect(),
            Node::SimLine {
                chip,
                offset,
                entry: SimEntry::Dir,
            } => entries(&SIM_ENTRIES, |entry| Node::SimLine {
                chip,
                offset,
                entry,
            }),
            _ => Vec::new(),
        }
    }

    /// Where a child stands in its directory's listing, given its index in
    /// `children`. Entries that come and go with export and hot-plug get a
    /// position derived from what they are (kind, then number), so that a
    /// listing read in several calls shows every entry present all along
    /// exactly once; fixed entries keep their index.
    pub(super) fn position(&self, child: Node, index: usize) -> u64 {
        const CLASS: u32 = 32;
        match child {
            Node::Chip {
                id,
                entry: ChipEntry::Dir,
            } => 1 << CLASS | self.mux.chip(id).map_or(0, |c| u64::from(c.base)),
            Node::PerChip {
                id,
                entry: ChipEntry::Dir,
            } => {
                let number = self.mux.chip(id).and_then(|c| device_number(&c));
                2 << CLASS | u64::from(number.unwrap_or(0))
            }
            Node::Gpio {
                global,
                entry: GpioEntry::Dir,
            }
            | Node::PerChipLine {
                global,
                entry: GpioEntry::Dir,
            } => 3 << CLASS | u64::from(global),
            Node::Sim => 4 << CLASS,
            _ => index as u64,
        }
    }

    /// The child called `name`, if the name is canonical; whether it
    /// exists now is for `kind` to say.
    pub(super) fn lookup(&self, parent: Node, name: &str) -> Option<Node> {
        Some(match parent {
            Node::Root => match name {
                "export" => Node::Export,
                "unexport" => Node::Unexport,
                "sim" => Node::Sim,
                _ => {
                    if let Some(base) = numbered(name, "gpiochip") {
                        let chip = self.mux.chips().into_iter().find(|c| c.base == base)?;
                        Node::Chip {
                            id: chip.id,
                            entry: ChipEntry::Dir,
                        }
                    } else if let Some(number) = numbered(name, "chip") {
                        let chips = self.mux.chips().into_iter();
                        let chip = chips
                            .into_iter()
                            .find(|c| device_number(c) == Some(number))?;
                        Node::PerChip {
                            id: chip.id,
                            entry: ChipEntry::Dir,
                        }
                    } else {
                        Node::Gpio {
                            global: numbered(name, "gpio")?,
                            entry: GpioEntry::Dir,
                        }
                    }
                }
            },
            Node::Chip {
                id,
                entry: ChipEntry::Dir,
            } => Node::Chip {
                id,
                entry: entries::entry_named(&CHIP_ENTRIES, name)?,
            },
            Node::PerChip {
                id,
                entry: ChipEntry::Dir,
            } => match entries::entry_named(&PER_CHIP_ENTRIES, name) {
                Some(entry) => Node::PerChip { id, entry },
                None => {
                    let chip = self.mux.chip(id)?;
                    let offset = numbered(name, "gpio").filter(|&o| o < chip.info.num_lines())?;
                    Node::PerChipLine {
                        global: chip.base + offset,
                        entry: GpioEntry::Dir,
                    }
                }
            },
            Node::Chip {
                id,
                entry: ChipEntry::Device,
            } => {
                let chip = self.mux.chip(id)?;
                (&*chip.info.name == name).then_some(Node::Chip {
                    id,
                    entry: ChipEntry::DeviceChip,
                })?
            }
            Node::PerChip {
                id,
                entry: ChipEntry::Device,
            } => {
                let chip = self.mux.chip(id)?;
                (&*chip.info.name == name).then_some(Node::PerChip {
                    id,
                    entry: ChipEntry::DeviceChip,
                })?
            }
            Node::PerChipLine {
                global,
                entry: GpioEntry::Dir,
            } => Node::PerChipLine {
                global,
                entry: entries::entry_named(&PER_CHIP_LINE_ENTRIES, name)?,
            },
            Node::Gpio {
                global,
                entry: GpioEntry::Dir,
            } => Node::Gpio {
                global,
                entry: entries::entry_named(&GPIO_ENTRIES, name)?,
            },
            Node::Sim => {
                let chips = self.sim.as_ref()?.chips();
                let chip = chips.iter().position(|(label, _)| label == name)?;
                Node::SimChip { chip: chip as u32 }
            }
            Node::SimChip { chip } => Node::SimLine {
                chip,
                offset: numbered(name, "line")?,
                entry: SimEntry::Dir,
            },
            Node::SimLine {
                chip,
                offset,
                entry: SimEntry::Dir,
            } => Node::SimLine {
                chip,
                offset,
                entry: entries::entry_named(&SIM_ENTRIES, name)?,
            },
            _ => return None,
        })
    }
}

/// The listable entries of a directory table, as nodes made by `make`.
fn entries<E: Copy, S>(table: &[Entry<E, S>], make: impl Fn(E) -> Node) -> Vec<(Node, String)> {
    entries::entry_names(table)
        .map(|(entry, name)| (make(entry), name.to_string()))
        .collect()
}

/// The number in a name like `gpio17`, only in its canonical spelling.
fn numbered(name: &str, prefix: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    let n: u32 = digits.parse().ok()?;
    (n.to_string() == digits).then_some(n)
}
