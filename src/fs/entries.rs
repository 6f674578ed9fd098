//! One descriptor per entry of each directory, as sysfs fixes it: name,
//! kind, mode, show and store. As in kernfs, a file's mode says which
//! operations it has (read bits: a show; write bits: a store); a test
//! below holds the tables to that.

use std::sync::Arc;

use fuser::FileType;

use super::content::{self as c, Attributes, Result, Show, SimWire, Store, line_of};
use super::node::{ChipEntry, GpioEntry, Node, SimEntry};
use crate::mux::{Chip, Line};

/// What an entry is when created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Link,
    /// A chip's `device`: a link where the chip has a sysfs device to lead
    /// to, else a directory holding `<chip name>`.
    Device,
}

/// One entry of a directory whose operations act on an `S`.
pub(super) struct Entry<E: 'static, S: 'static> {
    pub(super) id: E,
    /// Empty for the directory itself and for `device/<chip name>`, which
    /// are not listed by a fixed name.
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) mode: u16,
    show: Option<Show<S>>,
    store: Option<Store<S>>,
}

const fn entry<E, S>(id: E, name: &'static str, kind: Kind, mode: u16) -> Entry<E, S> {
    file(id, name, kind, mode, None, None)
}

const fn file<E, S>(
    id: E,
    name: &'static str,
    kind: Kind,
    mode: u16,
    show: Option<Show<S>>,
    store: Option<Store<S>>,
) -> Entry<E, S> {
    Entry {
        id,
        name,
        kind,
        mode,
        show,
        store,
    }
}

const fn dir<E, S>(id: E, name: &'static str) -> Entry<E, S> {
    entry(id, name, Kind::Dir, 0o755)
}

const fn link<E, S>(id: E, name: &'static str) -> Entry<E, S> {
    entry(id, name, Kind::Link, 0o777)
}

/// A read-only file (0444).
const fn ro<E, S>(id: E, name: &'static str, show: Show<S>) -> Entry<E, S> {
    file(id, name, Kind::File, 0o444, Some(show), None)
}

/// A read-write file (0644).
const fn rw<E, S>(id: E, name: &'static str, show: Show<S>, store: Store<S>) -> Entry<E, S> {
    file(id, name, Kind::File, 0o644, Some(show), Some(store))
}

/// A write-only file (0200).
const fn wo<E, S>(id: E, name: &'static str, store: Store<S>) -> Entry<E, S> {
    file(id, name, Kind::File, 0o200, None, Some(store))
}

/// The root's `export` and `unexport`, by global number or line name.
const EXPORT: Entry<(), ()> = wo((), "export", c::store_export);
const UNEXPORT: Entry<(), ()> = wo((), "unexport", c::store_unexport);

// What `gpiochip<BASE>` and `chip<X>` have in common.
const CHIP_DIR: Entry<ChipEntry, Chip> = dir(ChipEntry::Dir, "");
const CHIP_LABEL: Entry<ChipEntry, Chip> = ro(ChipEntry::Label, "label", c::show_label);
const CHIP_NGPIO: Entry<ChipEntry, Chip> = ro(ChipEntry::Ngpio, "ngpio", c::show_ngpio);
const CHIP_UEVENT: Entry<ChipEntry, Chip> =
    rw(ChipEntry::Uevent, "uevent", c::show_uevent, c::store_uevent);
const CHIP_DEVICE: Entry<ChipEntry, Chip> = entry(ChipEntry::Device, "device", Kind::Device, 0o755);
const CHIP_DEVICE_CHIP: Entry<ChipEntry, Chip> = dir(ChipEntry::DeviceChip, "");
const CHIP_POWER: Entry<ChipEntry, Chip> = dir(ChipEntry::Power, "power");
const CHIP_SUBSYSTEM: Entry<ChipEntry, Chip> = link(ChipEntry::Subsystem, "subsystem");

pub(super) const CHIP_ENTRIES: [Entry<ChipEntry, Chip>; 9] = [
    CHIP_DIR,
    ro(ChipEntry::Base, "base", c::show_base),
    CHIP_LABEL,
    CHIP_NGPIO,
    CHIP_UEVENT,
    CHIP_DEVICE,
    CHIP_DEVICE_CHIP,
    CHIP_POWER,
    CHIP_SUBSYSTEM,
];

/// A `chip<X>` directory, as gpiolib-sysfs.c's gpiochip_ext_attrs and the
/// class device give it.
pub(super) const PER_CHIP_ENTRIES: [Entry<ChipEntry, Chip>; 10] = [
    CHIP_DIR,
    wo(ChipEntry::Export, "export", c::store_export_offset),
    wo(ChipEntry::Unexport, "unexport", c::store_unexport_offset),
    CHIP_LABEL,
    CHIP_NGPIO,
    CHIP_UEVENT,
    CHIP_DEVICE,
    CHIP_DEVICE_CHIP,
    CHIP_POWER,
    CHIP_SUBSYSTEM,
];

const GPIO_DIRECTION: Entry<GpioEntry, Line> = rw(
    GpioEntry::Direction,
    "direction",
    c::show_direction,
    c::store_direction,
);
const GPIO_VALUE: Entry<GpioEntry, Line> =
    rw(GpioEntry::Value, "value", c::show_value, c::store_value);

/// A `chip<X>/gpio<OFFSET>` directory: an attribute group, only these two.
pub(super) const PER_CHIP_LINE_ENTRIES: [Entry<GpioEntry, Line>; 3] =
    [dir(GpioEntry::Dir, ""), GPIO_DIRECTION, GPIO_VALUE];

pub(super) const GPIO_ENTRIES: [Entry<GpioEntry, Line>; 14] = [
    dir(GpioEntry::Dir, ""),
    GPIO_DIRECTION,
    GPIO_VALUE,
    rw(GpioEntry::Edge, "edge", c::show_edge, c::store_edge),
    rw(
        GpioEntry::ActiveLow,
        "active_low",
        c::show_active_low,
        c::store_active_low,
    ),
    rw(GpioEntry::Uevent, "uevent", c::show_uevent, c::store_uevent),
    // Read as a stream of events (files.rs), not shown.
    entry(GpioEntry::Events, "events", Kind::File, 0o444),
    rw(GpioEntry::Bias, "bias", c::show_bias, c::store_bias),
    rw(GpioEntry::Drive, "drive", c::show_drive, c::store_drive),
    rw(
        GpioEntry::DebounceUs,
        "debounce_us",
        c::show_debounce_us,
        c::store_debounce_us,
    ),
    link(GpioEntry::Device, "device"),
    dir(GpioEntry::Power, "power"),
    link(GpioEntry::Subsystem, "subsystem"),
    ro(GpioEntry::Holders, "holders", c::show_holders),
];

pub(super) const SIM_ENTRIES: [Entry<SimEntry, SimWire>; 4] = [
    dir(SimEntry::Dir, ""),
    rw(SimEntry::Pull, "pull", c::show_pull, c::store_pull),
    ro(SimEntry::Value, "value", c::show_level),
    rw(SimEntry::Hog, "hog", c::show_hog, c::store_hog),
];

/// The entry of a table with id `id`.
fn find<E: Copy + PartialEq, S>(
    table: &'static [Entry<E, S>],
    id: E,
) -> Option<&'static Entry<E, S>> {
    table.iter().find(|e| e.id == id)
}

/// The id in a table whose discriminant is `index` (from an inode number).
pub(super) fn find_index<E: Copy + Into<u8>, S>(
    table: &'static [Entry<E, S>],
    index: u64,
) -> Option<E> {
    table
        .iter()
        .find(|e| u64::from(e.id.into()) == index)
        .map(|e| e.id)
}

/// A named child entry of a directory table (not the directory itself).
pub(super) fn entry_named<E: Copy, S>(table: &[Entry<E, S>], name: &str) -> Option<E> {
    table
        .iter()
        .find(|e| !e.name.is_empty() && e.name == name)
        .map(|e| e.id)
}

/// The listable children of a directory table.
pub(super) fn entry_names<E: Copy, S>(
    table: &[Entry<E, S>],
) -> impl Iterator<Item = (E, &'static str)> + '_ {
    table
        .iter()
        .filter(|e| !e.name.is_empty())
        .map(|e| (e.id, e.name))
}

/// A file operation, run on whichever entry and subject a node has.
trait Operation {
    fn run<E, S>(self, entry: Option<&Entry<E, S>>, attrs: &Attributes, subject: &S) -> Result<()>;
}

/// A show into a buffer; an entry without one shows nothing.
struct ShowInto<'o>(&'o mut Vec<u8>);

impl Operation for ShowInto<'_> {
    fn run<E, S>(self, entry: Option<&Entry<E, S>>, attrs: &Attributes, subject: &S) -> Result<()> {
        self.0.clear();
        match entry.and_then(|e| e.show) {
            Some(show) => show(attrs, subject, self.0),
            None => Ok(()),
        }
    }
}

/// A store of written data; without one, EACCES (what kernfs answers).
struct StoreOf<'d>(&'d [u8]);

impl Operation for StoreOf<'_> {
    fn run<E, S>(self, entry: Option<&Entry<E, S>>, attrs: &Attributes, subject: &S) -> Result<()> {
        match entry.and_then(|e| e.store) {
            Some(store) => store(attrs, subject, self.0),
            None => Err(nix::errno::Errno::EACCES),
        }
    }
}

impl Node {
    /// What the node is when created, and its mode.
    fn spec(self) -> (Kind, u16) {
        fn of<E: Copy + PartialEq, S>(table: &'static [Entry<E, S>], id: E) -> (Kind, u16) {
            find(table, id).map_or((Kind::File, 0), |e| (e.kind, e.mode))
        }
        match self {
            Node::Root | Node::Sim | Node::SimChip { .. } => (Kind::Dir, 0o755),
            Node::Export => (EXPORT.kind, EXPORT.mode),
            Node::Unexport => (UNEXPORT.kind, UNEXPORT.mode),
            Node::Chip { entry, .. } => of(&CHIP_ENTRIES, entry),
            Node::PerChip { entry, .. } => of(&PER_CHIP_ENTRIES, entry),
            Node::Gpio { entry, .. } => of(&GPIO_ENTRIES, entry),
            Node::PerChipLine { entry, .. } => of(&PER_CHIP_LINE_ENTRIES, entry),
            Node::SimLine { entry, .. } => of(&SIM_ENTRIES, entry),
        }
    }

    /// Regular file, directory or symlink. `device` of a chip is a link
    /// only where the chip has a real sysfs device to lead to.
    pub(super) fn kind(self, device_is_link: bool) -> FileType {
        match self.spec().0 {
            Kind::Dir => FileType::Directory,
            Kind::File => FileType::RegularFile,
            Kind::Link => FileType::Symlink,
            Kind::Device if device_is_link => FileType::Symlink,
            Kind::Device => FileType::Directory,
        }
    }

    /// The sysfs mode a node is created with.
    pub(super) fn default_mode(self, kind: FileType) -> u16 {
        match kind {
            FileType::Directory => 0o755,
            FileType::Symlink => 0o777,
            _ => self.spec().1,
        }
    }

    /// Whether the node has a store operation at all (kernfs's has_write).
    pub(super) fn writable(self) -> bool {
        self.spec().1 & 0o222 != 0
    }

    /// Whether the node has a show operation (or, for `events`, a stream)
    /// at all (kernfs's has_read).
    pub(super) fn readable(self) -> bool {
        self.spec().1 & 0o444 != 0
    }

    /// Writes the text a read at offset 0 produces into `out`; `line` is
    /// the open file's line (for a line's files).
    pub(super) fn show(
        self,
        attrs: &Attributes,
        line: Option<&Arc<Line>>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.apply(attrs, line, ShowInto(out))
    }

    /// A write of `data` (at most a page) to the node.
    pub(super) fn store(
        self,
        attrs: &Attributes,
        line: Option<&Arc<Line>>,
        data: &[u8],
    ) -> Result<()> {
        self.apply(attrs, line, StoreOf(data))
    }

    /// Runs `op` with the node's entry and its subject; a gone chip or line
    /// is ENODEV, as kernfs answers for a removed attribute.
    fn apply(self, attrs: &Attributes, line: Option<&Arc<Line>>, op: impl Operation) -> Result<()> {
        match self {
            Node::Export => op.run(Some(&EXPORT), attrs, &()),
            Node::Unexport => op.run(Some(&UNEXPORT), attrs, &()),
            Node::Chip { id, entry } => {
                op.run(find(&CHIP_ENTRIES, entry), attrs, &*attrs.chip(id)?)
            }
            Node::PerChip { id, entry } => {
                op.run(find(&PER_CHIP_ENTRIES, entry), attrs, &*attrs.chip(id)?)
            }
            Node::Gpio { entry, .. } => {
                op.run(find(&GPIO_ENTRIES, entry), attrs, &**line_of(line)?)
            }
            Node::PerChipLine { entry, .. } => op.run(
                find(&PER_CHIP_LINE_ENTRIES, entry),
                attrs,
                &**line_of(line)?,
            ),
            Node::SimLine {
                chip,
                offset,
                entry,
            } => {
                let wire = attrs.sim_wire(chip, offset)?;
                op.run(find(&SIM_ENTRIES, entry), attrs, &wire)
            }
            Node::Root | Node::Sim | Node::SimChip { .. } => op.run::<(), ()>(None, attrs, &()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read bits exactly where a show is (`events` is read as a stream),
    /// write bits exactly where a store is.
    fn modes_match_operations<E: Copy + std::fmt::Debug + PartialEq, S>(
        table: &[Entry<E, S>],
        stream: Option<E>,
    ) {
        for e in table.iter().filter(|e| e.kind == Kind::File) {
            let readable = e.show.is_some() || Some(e.id) == stream;
            assert_eq!(e.mode & 0o444 != 0, readable, "{:?} {}", e.id, e.name);
            assert_eq!(
                e.mode & 0o222 != 0,
                e.store.is_some(),
                "{:?} {}",
                e.id,
                e.name
            );
        }
    }

    #[test]
    fn file_modes_match_their_operations() {
        modes_match_operations(&[EXPORT, UNEXPORT], None);
        modes_match_operations(&CHIP_ENTRIES, None);
        modes_match_operations(&PER_CHIP_ENTRIES, None);
        modes_match_operations(&GPIO_ENTRIES, Some(GpioEntry::Events));
        modes_match_operations(&PER_CHIP_LINE_ENTRIES, None);
        modes_match_operations(&SIM_ENTRIES, None);
    }
}
