//! The tree's nodes and their inode numbers.
//!
//! Inode numbers are computed from what a node is (a chip's id, an
//! entry's index, and for a line's entries the export they belong to, the
//! line's serial), so the tree needs no inode table. The kernel may hold
//! an inode after its node is gone (a file left open across unexport):
//! numbering by export means a re-exported line never meets those inodes.

use super::entries::{
    CHIP_ENTRIES, GPIO_ENTRIES, PER_CHIP_ENTRIES, PER_CHIP_LINE_ENTRIES, SIM_ENTRIES, find_index,
};

/// Entries of a `gpiochip<BASE>` directory, and of a `chip<X>` one. The
/// discriminant is the entry's part of its inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum ChipEntry {
    Dir = 0,
    Base = 1,
    /// `chip<X>/export` and `unexport`: by hardware offset.
    Export = 2,
    Unexport = 3,
    Label = 4,
    Ngpio = 5,
    Uevent = 6,
    Device = 7,
    /// `device/<chip name>` where `device` is synthesized.
    DeviceChip = 8,
    Power = 9,
    Subsystem = 10,
}

/// Entries of a `gpio<N>` directory; the discriminant as in [`ChipEntry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum GpioEntry {
    Dir = 0,
    Direction = 1,
    Value = 2,
    Edge = 3,
    ActiveLow = 4,
    Uevent = 5,
    Events = 6,
    Bias = 7,
    Drive = 8,
    DebounceUs = 9,
    Device = 10,
    Power = 11,
    Subsystem = 12,
    /// gpiofs: the processes with files of the line open.
    Holders = 13,
}

/// Entries of a simulated line's control directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum SimEntry {
    Dir = 0,
    Pull = 1,
    Value = 2,
    Hog = 3,
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

macro_rules! discriminant_into_u8 {
    ($($t:ty),*) => {$(
        impl From<$t> for u8 {
            fn from(entry: $t) -> u8 {
                entry as u8
            }
        }
    )*};
}
discriminant_into_u8!(ChipEntry, GpioEntry, SimEntry);

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
        let low = ino & 0xff;
        let mid = ((ino >> 8) & 0xffff_ffff) as u32;
        Some(Ino::Node(match (ino >> TAG_SHIFT, ino) {
            (0, ROOT) => Node::Root,
            (0, EXPORT) => Node::Export,
            (0, UNEXPORT) => Node::Unexport,
            (0, SIM) => Node::Sim,
            (TAG_CHIP, _) => Node::Chip {
                id: mid,
                entry: find_index(&CHIP_ENTRIES, low)?,
            },
            (TAG_GPIO, _) => {
                return Some(Ino::LineEntry {
                    serial: (ino >> 8) & SERIAL_MASK,
                    entry: find_index(&GPIO_ENTRIES, low)?,
                    per_chip: false,
                });
            }
            (TAG_PER_CHIP_LINE, _) => {
                return Some(Ino::LineEntry {
                    serial: (ino >> 8) & SERIAL_MASK,
                    entry: find_index(&PER_CHIP_LINE_ENTRIES, low)?,
                    per_chip: true,
                });
            }
            (TAG_PER_CHIP, _) => Node::PerChip {
                id: mid,
                entry: find_index(&PER_CHIP_ENTRIES, low)?,
            },
            (TAG_SIM_CHIP, _) => Node::SimChip {
                chip: (ino & 0xffff_ffff) as u32,
            },
            (TAG_SIM_LINE, _) => Node::SimLine {
                chip: ((ino >> 40) & 0xffff) as u32,
                offset: ((ino >> 8) & 0xffff_ffff) as u32,
                entry: find_index(&SIM_ENTRIES, low)?,
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
            Node::Chip { id, entry } => TAG_CHIP << TAG_SHIFT | u64::from(id) << 8 | entry as u64,
            Node::Gpio { entry, .. } => {
                TAG_GPIO << TAG_SHIFT | (serial & SERIAL_MASK) << 8 | entry as u64
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
                    | entry as u64
            }
            Node::PerChip { id, entry } => {
                TAG_PER_CHIP << TAG_SHIFT | u64::from(id) << 8 | entry as u64
            }
            Node::PerChipLine { entry, .. } => {
                TAG_PER_CHIP_LINE << TAG_SHIFT | (serial & SERIAL_MASK) << 8 | entry as u64
            }
        }
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
