//! The tree's nodes and their inode numbers.
//!
//! Inode numbers are computed from what a node is (a chip's id, an
//! entry's index, and for a line's entries the export they belong to, the
//! line's serial), so the tree needs no inode table. The kernel may hold
//! an inode after its node is gone (a file left open across unexport):
//! numbering by export means a re-exported line never meets those inodes.

use fuser::FileType;

/// Entries of a `gpiochip<BASE>` directory, and of a `chip<X>` one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ChipEntry {
    Dir,
    Base,
    /// `chip<X>/export` and `unexport`: by hardware offset.
    Export,
    Unexport,
    Label,
    Ngpio,
    Uevent,
    Device,
    /// `device/<chip name>` where `device` is synthesized.
    DeviceChip,
    Power,
    Subsystem,
}

/// Entries of a `gpio<N>` directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum GpioEntry {
    Dir,
    Direction,
    Value,
    Edge,
    ActiveLow,
    Uevent,
    Events,
    Bias,
    Drive,
    DebounceUs,
    Device,
    Power,
    Subsystem,
    /// gpiofs: the processes with files of the line open.
    Holders,
}

/// Entries of a simulated line's control directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum SimEntry {
    Dir,
    Pull,
    Value,
    Hog,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Node {
    Root,
    Export,
    Unexport,
    Chip {
        id: u32,
        entry: ChipEntry,
    },
    Gpio {
        global: u32,
        entry: GpioEntry,
    },
    Sim,
    SimChip {
        chip: u32,
    },
    SimLine {
        chip: u32,
        offset: u32,
        entry: SimEntry,
    },
    /// `chip<X>/...` of the per-chip ABI (Linux 6.17+); `id` as in `Chip`.
    PerChip {
        id: u32,
        entry: ChipEntry,
    },
    /// `chip<X>/gpio<OFFSET>/...`: the same line as `gpio<global>`.
    PerChipLine {
        global: u32,
        entry: GpioEntry,
    },
}

pub(super) const CHIP_ENTRIES: [(ChipEntry, &str); 9] = [
    (ChipEntry::Dir, ""),
    (ChipEntry::Base, "base"),
    (ChipEntry::Label, "label"),
    (ChipEntry::Ngpio, "ngpio"),
    (ChipEntry::Uevent, "uevent"),
    (ChipEntry::Device, "device"),
    (ChipEntry::DeviceChip, ""),
    (ChipEntry::Power, "power"),
    (ChipEntry::Subsystem, "subsystem"),
];

/// A `chip<X>` directory, as gpiolib-sysfs.c's gpiochip_ext_attrs and the
/// class device give it.
pub(super) const PER_CHIP_ENTRIES: [(ChipEntry, &str); 10] = [
    (ChipEntry::Dir, ""),
    (ChipEntry::Export, "export"),
    (ChipEntry::Unexport, "unexport"),
    (ChipEntry::Label, "label"),
    (ChipEntry::Ngpio, "ngpio"),
    (ChipEntry::Uevent, "uevent"),
    (ChipEntry::Device, "device"),
    (ChipEntry::DeviceChip, ""),
    (ChipEntry::Power, "power"),
    (ChipEntry::Subsystem, "subsystem"),
];

/// A `chip<X>/gpio<OFFSET>` directory: an attribute group, only these two.
pub(super) const PER_CHIP_LINE_ENTRIES: [(GpioEntry, &str); 3] = [
    (GpioEntry::Dir, ""),
    (GpioEntry::Direction, "direction"),
    (GpioEntry::Value, "value"),
];

pub(super) const GPIO_ENTRIES: [(GpioEntry, &str); 14] = [
    (GpioEntry::Dir, ""),
    (GpioEntry::Direction, "direction"),
    (GpioEntry::Value, "value"),
    (GpioEntry::Edge, "edge"),
    (GpioEntry::ActiveLow, "active_low"),
    (GpioEntry::Uevent, "uevent"),
    (GpioEntry::Events, "events"),
    (GpioEntry::Bias, "bias"),
    (GpioEntry::Drive, "drive"),
    (GpioEntry::DebounceUs, "debounce_us"),
    (GpioEntry::Device, "device"),
    (GpioEntry::Power, "power"),
    (GpioEntry::Subsystem, "subsystem"),
    (GpioEntry::Holders, "holders"),
];

pub(super) const SIM_ENTRIES: [(SimEntry, &str); 4] = [
    (SimEntry::Dir, ""),
    (SimEntry::Pull, "pull"),
    (SimEntry::Value, "value"),
    (SimEntry::Hog, "hog"),
];

fn index_of<T: PartialEq>(table: &[(T, &str)], entry: T) -> u64 {
    table.iter().position(|(e, _)| *e == entry).unwrap_or(0) as u64
}

/// A named child entry of a directory table (not the directory itself).
pub(super) fn entry_named<T: Copy>(table: &[(T, &'static str)], name: &str) -> Option<T> {
    table
        .iter()
        .skip(1)
        .find(|(_, n)| !n.is_empty() && *n == name)
        .map(|&(e, _)| e)
}

/// The listable children of a directory table.
pub(super) fn entry_names<'a, T: Copy>(
    table: &'a [(T, &'static str)],
) -> impl Iterator<Item = (T, &'static str)> + 'a {
    table.iter().skip(1).filter(|(_, n)| !n.is_empty()).copied()
}

const ROOT: u64 = 1;
const EXPORT: u64 = 2;
const UNEXPORT: u64 = 3;
const SIM: u64 = 4;
const TAG_SHIFT: u32 = 56;
const TAG_CHIP: u64 = 1;
const TAG_GPIO: u64 = 2;
const TAG_SIM_CHIP: u64 = 3;
const TAG_SIM_LINE: u64 = 4;
const TAG_PER_CHIP: u64 = 5;
const TAG_PER_CHIP_LINE: u64 = 6;

/// What an inode number names. A line's entries are named by export
/// serial; which line that is, and whether it is still exported, only the
/// multiplexer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ino {
    Node(Node),
    /// An entry of `gpio<N>/`, or with `per_chip` of `chip<X>/gpio<OFFSET>/`.
    LineEntry {
        serial: u64,
        entry: GpioEntry,
        per_chip: bool,
    },
}

impl Ino {
    pub(super) fn decode(ino: u64) -> Option<Ino> {
        let low = (ino & 0xff) as usize;
        let mid = ((ino >> 8) & 0xffff_ffff) as u32;
        Some(Ino::Node(match (ino >> TAG_SHIFT, ino) {
            (0, ROOT) => Node::Root,
            (0, EXPORT) => Node::Export,
            (0, UNEXPORT) => Node::Unexport,
            (0, SIM) => Node::Sim,
            (TAG_CHIP, _) => Node::Chip {
                id: mid,
                entry: CHIP_ENTRIES.get(low)?.0,
            },
            (TAG_GPIO, _) => {
                return Some(Ino::LineEntry {
                    serial: (ino >> 8) & SERIAL_MASK,
                    entry: GPIO_ENTRIES.get(low)?.0,
                    per_chip: false,
                });
            }
            (TAG_PER_CHIP_LINE, _) => {
                return Some(Ino::LineEntry {
                    serial: (ino >> 8) & SERIAL_MASK,
                    entry: PER_CHIP_LINE_ENTRIES.get(low)?.0,
                    per_chip: true,
                });
            }
            (TAG_PER_CHIP, _) => Node::PerChip {
                id: mid,
                entry: PER_CHIP_ENTRIES.get(low)?.0,
            },
            (TAG_SIM_CHIP, _) => Node::SimChip {
                chip: (ino & 0xffff_ffff) as u32,
            },
            (TAG_SIM_LINE, _) => Node::SimLine {
                chip: ((ino >> 40) & 0xffff) as u32,
                offset: ((ino >> 8) & 0xffff_ffff) as u32,
                entry: SIM_ENTRIES.get(low)?.0,
            },
            _ => return None,
        }))
    }
}

/// Export serials fill the 48 bits between tag and entry: 2.8e14 exports.
const SERIAL_MASK: u64 = (1 << 48) - 1;

impl Node {
    /// The inode number; `serial` is the export a line's entry belongs to
    /// (unused by other nodes).
    pub(super) fn ino(self, serial: u64) -> u64 {
        match self {
            Node::Root => ROOT,
            Node::Export => EXPORT,
            Node::Unexport => UNEXPORT,
            Node::Sim => SIM,
            Node::Chip { id, entry } => {
                TAG_CHIP << TAG_SHIFT | u64::from(id) << 8 | index_of(&CHIP_ENTRIES, entry)
            }
            Node::Gpio { entry, .. } => {
                TAG_GPIO << TAG_SHIFT | (serial & SERIAL_MASK) << 8 | index_of(&GPIO_ENTRIES, entry)
            }
            Node::SimChip { chip } => TAG_SIM_CHIP << TAG_SHIFT | u64::from(chip),
            Node::SimLine {
                chip,
                offset,
                entry,
            } => {
                TAG_SIM_LINE << TAG_SHIFT
                    | u64::from(chip) << 40
                    | u64::from(offset) << 8
                    | index_of(&SIM_ENTRIES, entry)
            }
            Node::PerChip { id, entry } => {
                TAG_PER_CHIP << TAG_SHIFT | u64::from(id) << 8 | index_of(&PER_CHIP_ENTRIES, entry)
            }
            Node::PerChipLine { entry, .. } => {
                TAG_PER_CHIP_LINE << TAG_SHIFT
                    | (serial & SERIAL_MASK) << 8
                    | index_of(&PER_CHIP_LINE_ENTRIES, entry)
            }
        }
    }

    /// Regular file, directory or symlink. `device` of a chip is a link
    /// only where the chip has a real sysfs device to lead to.
    pub(super) fn kind(self, device_is_link: bool) -> FileType {
        match self {
            Node::Root
            | Node::Sim
            | Node::SimChip { .. }
            | Node::SimLine {
                entry: SimEntry::Dir,
                ..
            }
            | Node::Chip {
                entry: ChipEntry::Dir | ChipEntry::DeviceChip | ChipEntry::Power,
                ..
            }
            | Node::PerChip {
                entry: ChipEntry::Dir | ChipEntry::DeviceChip | ChipEntry::Power,
                ..
            }
            | Node::Gpio {
                entry: GpioEntry::Dir | GpioEntry::Power,
                ..
            }
            | Node::PerChipLine {
                entry: GpioEntry::Dir,
                ..
            } => FileType::Directory,
            Node::Chip {
                entry: ChipEntry::Device,
                ..
            }
            | Node::PerChip {
                entry: ChipEntry::Device,
                ..
            } if !device_is_link => FileType::Directory,
            Node::Chip {
                entry: ChipEntry::Device | ChipEntry::Subsystem,
                ..
            }
            | Node::PerChip {
                entry: ChipEntry::Device | ChipEntry::Subsystem,
                ..
            }
            | Node::Gpio {
                entry: GpioEntry::Device | GpioEntry::Subsystem,
                ..
            } => FileType::Symlink,
            _ => FileType::RegularFile,
        }
    }

    /// The sysfs mode a node is created with.
    pub(super) fn default_mode(self, kind: FileType) -> u16 {
        match (self, kind) {
            (_, FileType::Directory) => 0o755,
            (_, FileType::Symlink) => 0o777,
            (
                Node::Export
                | Node::Unexport
                | Node::PerChip {
                    entry: ChipEntry::Export | ChipEntry::Unexport,
                    ..
                },
                _,
            ) => 0o200,
            (
                Node::Chip {
                    entry: ChipEntry::Base | ChipEntry::Label | ChipEntry::Ngpio,
                    ..
                }
                | Node::PerChip {
                    entry: ChipEntry::Label | ChipEntry::Ngpio,
                    ..
                }
                | Node::Gpio {
                    entry: GpioEntry::Events | GpioEntry::Holders,
                    ..
                }
                | Node::SimLine {
                    entry: SimEntry::Value,
                    ..
                },
                _,
            ) => 0o444,
            _ => 0o644,
        }
    }

    /// Whether the node has a store operation at all (kernfs's has_write).
    pub(super) fn writable(self) -> bool {
        !matches!(
            self,
            Node::Chip {
                entry: ChipEntry::Base | ChipEntry::Label | ChipEntry::Ngpio,
                ..
            } | Node::PerChip {
                entry: ChipEntry::Label | ChipEntry::Ngpio,
                ..
            } | Node::Gpio {
                entry: GpioEntry::Events | GpioEntry::Holders,
                ..
            } | Node::SimLine {
                entry: SimEntry::Value,
                ..
            }
        )
    }

    /// Whether the node has a show operation at all (kernfs's has_read).
    pub(super) fn readable(self) -> bool {
        !matches!(
            self,
            Node::Export
                | Node::Unexport
                | Node::PerChip {
                    entry: ChipEntry::Export | ChipEntry::Unexport,
                    ..
                }
        )
    }

    /// The line a node belongs to, for gpio directory entries (of
    /// either ABI).
    pub(super) fn line(self) -> Option<u32> {
        match self {
            Node::Gpio { global, .. } | Node::PerChipLine { global, .. } => Some(global),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_numbers_round_trip() {
        let nodes = [
            Node::Root,
            Node::Export,
            Node::Unexport,
            Node::Sim,
            Node::Chip {
                id: 7,
                entry: ChipEntry::DeviceChip,
            },
            Node::SimChip { chip: 3 },
            Node::SimLine {
                chip: 2,
                offset: 4095,
                entry: SimEntry::Hog,
            },
            Node::PerChip {
                id: 7,
                entry: ChipEntry::Unexport,
            },
        ];
        for node in nodes {
            assert_eq!(Ino::decode(node.ino(0)), Some(Ino::Node(node)));
        }
        let entry = Node::Gpio {
            global: 4_000_000,
            entry: GpioEntry::DebounceUs,
        };
        let decoded = Ino::decode(entry.ino(SERIAL_MASK));
        assert_eq!(
            decoded,
            Some(Ino::LineEntry {
                serial: SERIAL_MASK,
                entry: GpioEntry::DebounceUs,
                per_chip: false,
            })
        );
        let per_chip = Node::PerChipLine {
            global: 4_000_000,
            entry: GpioEntry::Value,
        };
        assert_eq!(
            Ino::decode(per_chip.ino(5)),
            Some(Ino::LineEntry {
                serial: 5,
                entry: GpioEntry::Value,
                per_chip: true,
            })
        );
        assert_ne!(entry.ino(1), entry.ino(2), "each export has its own inodes");
        assert_eq!(Ino::decode(0), None);
        assert_eq!(Ino::decode(99), None);
    }
}
