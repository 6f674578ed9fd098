//! The sysfs show and store operations, with the kernel's errnos. Each
//! works on one subject: the tree (`export`), a [`Chip`], a [`Line`] or a
//! [`SimWire`]; the entry tables (`entries`) say which file has which.

use nix::errno::Errno;
use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, RwLock};

use super::attr::{self, BIASES, DRIVES, EDGES, keyword, kstrtol, kstrtouint, name_of};
use super::control::ControlTree;
use super::files::OpenFiles;
use super::holders;
use crate::mux::{Chip, Line, Mux, OutputLevel};

/// Everything the operations need besides their subject.
pub(super) struct Attributes<'a> {
    pub(super) mux: &'a Mux,
    pub(super) sim: Option<&'a dyn ControlTree>,
    pub(super) files: &'a RwLock<OpenFiles>,
}

pub(super) type Result<T> = std::result::Result<T, Errno>;

/// A show: writes the text a read at offset 0 produces into an emptied
/// buffer (reused between reads).
pub(super) type Show<S> = fn(&Attributes<'_>, &S, &mut Vec<u8>) -> Result<()>;

/// A store: takes what a write gives it (at most a page).
pub(super) type Store<S> = fn(&Attributes<'_>, &S, &[u8]) -> Result<()>;

/// One line of a simulated chip, the subject of the control tree's files.
pub(super) struct SimWire {
    label: String,
    offset: u32,
}

impl Attributes<'_> {
    pub(super) fn chip(&self, id: u32) -> Result<Arc<Chip>> {
        self.mux.chip(id).ok_or(Errno::ENODEV)
    }

    /// Line `offset` of the simulated chip number `chip`.
    pub(super) fn sim_wire(&self, chip: u32, offset: u32) -> Result<SimWire> {
        let label = self
            .sim()?
            .chips()
            .get(chip as usize)
            .ok_or(Errno::ENOENT)?
            .0
            .clone();
        Ok(SimWire { label, offset })
    }

    fn sim(&self) -> Result<&dyn ControlTree> {
        self.sim.ok_or(Errno::ENOENT)
    }
}

/// The line of a `gpio<N>` file, unless unexported since it was opened.
pub(super) fn line_of(line: Option<&Arc<Line>>) -> Result<&Arc<Line>> {
    match line {
        Some(line) if !line.is_gone() => Ok(line),
        _ => Err(Errno::ENODEV),
    }
}

fn flag(value: bool) -> &'static [u8] {
    if value { b"1\n" } else { b"0\n" }
}

/// A line of text; writing to a Vec cannot fail.
fn put(out: &mut Vec<u8>, text: impl Display) -> Result<()> {
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// The text of a line's `value`: one of two constants, so reading it needs
/// no buffer.
pub(super) fn value_text(line: Option<&Arc<Line>>) -> Result<&'static [u8]> {
    level_text(line_of(line)?)
}

fn level_text(line: &Line) -> Result<&'static [u8]> {
    Ok(flag(line.value().map_err(mux_errno)?))
}

fn mux_errno(e: crate::mux::Error) -> Errno {
    e.errno()
}

// The tree's `export` and `unexport`: a global number or a line name.

pub(super) fn store_export(attrs: &Attributes, _: &(), data: &[u8]) -> Result<()> {
    let global = line_number(attrs.mux, data)?;
    attrs.mux.export(global).map(drop).map_err(mux_errno)
}

pub(super) fn store_unexport(attrs: &Attributes, _: &(), data: &[u8]) -> Result<()> {
    let global = line_number(attrs.mux, data)?;
    attrs.mux.unexport(global).map_err(mux_errno)
}

/// A global number for export/unexport: a kstrtol number, or the name of
/// exactly one line.
fn line_number(mux: &Mux, data: &[u8]) -> Result<u32> {
    match kstrtol(data) {
        Ok(n) => u32::try_from(n).map_err(|_| Errno::EINVAL),
        Err(Errno::EINVAL) => {
            let name = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
            let name = name.strip_suffix('\n').unwrap_or(name);
            if name.is_empty() {
                return Err(Errno::EINVAL);
            }
            mux.line_by_name(name).map_err(mux_errno)
        }
        Err(errno) => Err(errno),
    }
}

// A chip's files.

pub(super) fn show_base(_: &Attributes, chip: &Chip, out: &mut Vec<u8>) -> Result<()> {
    put(out, chip.base)
}

pub(super) fn show_label(_: &Attributes, chip: &Chip, out: &mut Vec<u8>) -> Result<()> {
    put(out, &chip.info.label)
}

pub(super) fn show_ngpio(_: &Attributes, chip: &Chip, out: &mut Vec<u8>) -> Result<()> {
    put(out, chip.info.num_lines())
}

/// `chip<X>/export`: by hardware offset.
pub(super) fn store_export_offset(attrs: &Attributes, chip: &Chip, data: &[u8]) -> Result<()> {
    let global = chip_line(chip, data)?;
    attrs.mux.export(global).map(drop).map_err(mux_errno)
}

pub(super) fn store_unexport_offset(attrs: &Attributes, chip: &Chip, data: &[u8]) -> Result<()> {
    let global = chip_line(chip, data)?;
    attrs.mux.unexport(global).map_err(mux_errno)
}

/// The global number of the line at a hardware offset of `chip`:
/// kstrtouint, and EINVAL past the chip's last line
/// (gpio_device_get_desc).
fn chip_line(chip: &Chip, data: &[u8]) -> Result<u32> {
    let offset = kstrtouint(data)?;
    if offset >= chip.info.num_lines() {
        return Err(Errno::EINVAL);
    }
    Ok(chip.base + offset)
}

// `uevent` of chips and lines: these devices have no variables of their
// own to show, and a write synthesizes an event after checking it.

pub(super) fn show_uevent<S>(_: &Attributes, _: &S, _: &mut Vec<u8>) -> Result<()> {
    Ok(())
}

pub(super) fn store_uevent<S>(_: &Attributes, _: &S, data: &[u8]) -> Result<()> {
    attr::check_uevent(data)
}

// A line's files.

pub(super) fn show_direction(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(if line.is_output() { b"out\n" } else { b"in\n" });
    Ok(())
}

pub(super) fn store_direction(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    let output = keyword(
        data,
        &[
            ("in", None),
            ("out", Some(OutputLevel { raw_high: false })),
            ("low", Some(OutputLevel { raw_high: false })),
            ("high", Some(OutputLevel { raw_high: true })),
        ],
    )?;
    line.set_direction(output).map_err(mux_errno)
}

/// `value` as the per-chip ABI's `chip<X>/gpio<OFFSET>/value` shows it;
/// the legacy `gpio<N>/value` is read through `value_text`, without a
/// buffer (reads.rs).
pub(super) fn show_value(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(level_text(line)?);
    Ok(())
}

pub(super) fn store_value(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    // Text first, then the direction, as Linux 6.17+ does (6.12 refused
    // an input before it looked at the text).
    let value = kstrtol(data)?;
    if !line.is_output() {
        return Err(Errno::EPERM);
    }
    line.set_value(value != 0).map_err(mux_errno)
}

pub(super) fn show_edge(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    put(out, name_of(&EDGES, line.edge()))
}

pub(super) fn store_edge(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    line.set_edge(keyword(data, &EDGES)?).map_err(mux_errno)
}

pub(super) fn show_active_low(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(flag(line.active_low()));
    Ok(())
}

pub(super) fn store_active_low(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    line.set_active_low(kstrtol(data)? != 0).map_err(mux_errno)
}

pub(super) fn show_bias(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    put(out, name_of(&BIASES, line.bias()))
}

pub(super) fn store_bias(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    line.set_bias(keyword(data, &BIASES)?).map_err(mux_errno)
}

pub(super) fn show_drive(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    put(out, name_of(&DRIVES, line.drive()))
}

pub(super) fn store_drive(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    line.set_drive(keyword(data, &DRIVES)?).map_err(mux_errno)
}

pub(super) fn show_debounce_us(_: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    put(out, line.debounce_us())
}

pub(super) fn store_debounce_us(_: &Attributes, line: &Line, data: &[u8]) -> Result<()> {
    let us = u32::try_from(kstrtol(data)?).map_err(|_| Errno::EINVAL)?;
    line.set_debounce_us(us).map_err(mux_errno)
}

pub(super) fn show_holders(attrs: &Attributes, line: &Line, out: &mut Vec<u8>) -> Result<()> {
    // /proc is read after the table's lock is let go.
    let files = (attrs.files.read())
        .unwrap_or_else(|e| e.into_inner())
        .of_line(line.global);
    holders::show(&files, out).map_err(|_| Errno::EIO)
}

// The control tree's files of a simulated line.

pub(super) fn show_pull(attrs: &Attributes, wire: &SimWire, out: &mut Vec<u8>) -> Result<()> {
    let up = attrs.sim()?.pull(&wire.label, wire.offset)?;
    out.extend_from_slice(if up { b"pull-up\n" } else { b"pull-down\n" });
    Ok(())
}

pub(super) fn store_pull(attrs: &Attributes, wire: &SimWire, data: &[u8]) -> Result<()> {
    let up = keyword(data, &[("pull-up", true), ("pull-down", false)])?;
    attrs.sim()?.set_pull(&wire.label, wire.offset, up)
}

pub(super) fn show_level(attrs: &Attributes, wire: &SimWire, out: &mut Vec<u8>) -> Result<()> {
    let level = attrs.sim()?.level(&wire.label, wire.offset)?;
    out.extend_from_slice(flag(level));
    Ok(())
}

pub(super) fn show_hog(attrs: &Attributes, wire: &SimWire, out: &mut Vec<u8>) -> Result<()> {
    match attrs.sim()?.hog(&wire.label, wire.offset)? {
        Some(consumer) => put(out, consumer),
        None => Ok(()),
    }
}

pub(super) fn store_hog(attrs: &Attributes, wire: &SimWire, data: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(data);
    let name = text.strip_suffix('\n').unwrap_or(&text).trim_matches('\0');
    let consumer = (!name.is_empty()).then(|| name.to_string());
    attrs.sim()?.set_hog(&wire.label, wire.offset, consumer)
}
