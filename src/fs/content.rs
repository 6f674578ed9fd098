//! What each attribute shows and what a write to it does: the sysfs
//! show/store operations, with the kernel's errnos.

use std::io::Write;
use std::sync::{Arc, RwLock};

use super::attr::{self, BIASES, DRIVES, EDGES, keyword, kstrtol, kstrtouint, name_of};
use super::control::ControlTree;
use super::files::OpenFiles;
use super::holders;
use super::node::{ChipEntry, GpioEntry, Node, SimEntry};
use crate::mux::{Line, Mux, OutputLevel};

/// Everything the attribute operations need.
pub(super) struct Attributes<'a> {
    pub(super) mux: &'a Mux,
    pub(super) sim: Option<&'a dyn ControlTree>,
    pub(super) files: &'a RwLock<OpenFiles>,
}

type Result<T> = std::result::Result<T, i32>;

fn line_of(line: Option<&Arc<Line>>) -> Result<&Arc<Line>> {
    match line {
        Some(line) if !line.is_gone() => Ok(line),
        _ => Err(libc::ENODEV),
    }
}

fn flag(value: bool) -> &'static [u8] {
    if value { b"1\n" } else { b"0\n" }
}

/// The text of a line's `value`: one of two constants, so reading it needs
/// no buffer.
pub(super) fn value_text(line: Option<&Arc<Line>>) -> Result<&'static [u8]> {
    let value = line_of(line)?.value().map_err(|e| e.errno())?;
    Ok(flag(value))
}

impl Attributes<'_> {
    /// The simulator and the label of its chip number `chip`.
    fn sim_chip(&self, chip: u32) -> Result<(&dyn ControlTree, String)> {
        let sim = self.sim.ok_or(libc::ENOENT)?;
        let label = sim
            .chips()
            .get(chip as usize)
            .ok_or(libc::ENOENT)?
            .0
            .clone();
        Ok((sim, label))
    }

    /// Writes the text a read at offset 0 produces into `out` (reused
    /// between reads, so the hot `value` read allocates nothing).
    pub(super) fn show(
        &self,
        node: Node,
        line: Option<&Arc<Line>>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.clear();
        let _ = match node {
            Node::Chip { id, entry } | Node::PerChip { id, entry } => {
                let chip = self.mux.chip(id).ok_or(libc::ENODEV)?;
                match entry {
                    ChipEntry::Base => writeln!(out, "{}", chip.base),
                    ChipEntry::Label => writeln!(out, "{}", chip.info.label),
                    ChipEntry::Ngpio => writeln!(out, "{}", chip.info.num_lines()),
                    _ => Ok(()),
                }
            }
            Node::Gpio { global, entry } | Node::PerChipLine { global, entry } => {
                let line = line_of(line)?;
                match entry {
                    GpioEntry::Direction => {
                        out.write_all(if line.is_output() { b"out\n" } else { b"in\n" })
                    }
                    GpioEntry::Value => out.write_all(value_text(Some(line))?),
                    GpioEntry::Edge => writeln!(out, "{}", name_of(&EDGES, line.edge())),
                    GpioEntry::ActiveLow => out.write_all(flag(line.active_low())),
                    GpioEntry::Bias => writeln!(out, "{}", name_of(&BIASES, line.bias())),
                    GpioEntry::Drive => writeln!(out, "{}", name_of(&DRIVES, line.drive())),
                    GpioEntry::DebounceUs => writeln!(out, "{}", line.debounce_us()),
                    GpioEntry::Holders => {
                        // /proc is read after the table's lock is let go.
                        let files = (self.files.read())
                            .unwrap_or_else(|e| e.into_inner())
                            .of_line(global);
                        holders::show(&files, out)
                    }
                    _ => Ok(()),
                }
            }
            Node::SimLine {
                chip,
                offset,
                entry,
            } => {
                let (sim, label) = self.sim_chip(chip)?;
                match entry {
                    SimEntry::Pull => out.write_all(if sim.pull(&label, offset)? {
                        b"pull-up\n"
                    } else {
                        b"pull-down\n"
                    }),
                    SimEntry::Value => out.write_all(flag(sim.level(&label, offset)?)),
                    SimEntry::Hog => match sim.hog(&label, offset)? {
                        Some(consumer) => writeln!(out, "{consumer}"),
                        None => Ok(()),
                    },
                    SimEntry::Dir => Ok(()),
                }
            }
            _ => Ok(()),
        };
        Ok(())
    }

    /// A write to `node`. `data` is what the store sees (at most a page).
    pub(super) fn store(&self, node: Node, line: Option<&Arc<Line>>, data: &[u8]) -> Result<()> {
        let mux_err = |e: crate::mux::Error| e.errno();
        match node {
            Node::Export => {
                let global = self.line_number(data)?;
                self.mux.export(global).map(drop).map_err(mux_err)
            }
            Node::Unexport => {
                let global = self.line_number(data)?;
                self.mux.unexport(global).map_err(mux_err)
            }
            Node::PerChip {
                id,
                entry: ChipEntry::Export,
            } => {
                let global = self.chip_line(id, data)?;
                self.mux.export(global).map(drop).map_err(mux_err)
            }
            Node::PerChip {
                id,
                entry: ChipEntry::Unexport,
            } => {
                let global = self.chip_line(id, data)?;
                self.mux.unexport(global).map_err(mux_err)
            }
            Node::Chip {
                entry: ChipEntry::Uevent,
                ..
            }
            | Node::PerChip {
                entry: ChipEntry::Uevent,
                ..
            }
            | Node::Gpio {
                entry: GpioEntry::Uevent,
                ..
            } => attr::check_uevent(data),
            Node::Gpio { entry, .. } | Node::PerChipLine { entry, .. } => {
                self.store_line(entry, line_of(line)?, data)
            }
            Node::SimLine {
                chip,
                offset,
                entry,
            } => {
                let (sim, label) = self.sim_chip(chip)?;
                match entry {
                    SimEntry::Pull => {
                        let up = keyword(data, &[("pull-up", true), ("pull-down", false)])?;
                        sim.set_pull(&label, offset, up)
                    }
                    SimEntry::Hog => {
                        let text = String::from_utf8_lossy(data);
                        let name = text.strip_suffix('\n').unwrap_or(&text).trim_matches('\0');
                        sim.set_hog(&label, offset, (!name.is_empty()).then(|| name.to_string()))
                    }
                    _ => Err(libc::EACCES),
                }
            }
            _ => Err(libc::EACCES),
        }
    }

    fn store_line(&self, entry: GpioEntry, line: &Line, data: &[u8]) -> Result<()> {
        let mux_err = |e: crate::mux::Error| e.errno();
        match entry {
            GpioEntry::Direction => {
                let output = keyword(
                    data,
                    &[
                        ("in", None),
                        ("out", Some(OutputLevel { raw_high: false })),
                        ("low", Some(OutputLevel { raw_high: false })),
                        ("high", Some(OutputLevel { raw_high: true })),
                    ],
                )?;
                line.set_direction(output).map_err(mux_err)
            }
            GpioEntry::Value => {
                // Text first, then the direction, as Linux 6.17+ does (6.12
                // refused an input before it looked at the text).
                let value = kstrtol(data)?;
                if !line.is_output() {
                    return Err(libc::EPERM);
                }
                line.set_value(value != 0).map_err(mux_err)
            }
            GpioEntry::Edge => line.set_edge(keyword(data, &EDGES)?).map_err(mux_err),
            GpioEntry::ActiveLow => line.set_active_low(kstrtol(data)? != 0).map_err(mux_err),
            GpioEntry::Bias => line.set_bias(keyword(data, &BIASES)?).map_err(mux_err),
            GpioEntry::Drive => line.set_drive(keyword(data, &DRIVES)?).map_err(mux_err),
            GpioEntry::DebounceUs => {
                let us = u32::try_from(kstrtol(data)?).map_err(|_| libc::EINVAL)?;
                line.set_debounce_us(us).map_err(mux_err)
            }
            _ => Err(libc::EACCES),
        }
    }

    /// The global number of the line at a hardware offset of chip `id`,
    /// for `chip<X>/export` and `unexport`: kstrtouint, and EINVAL past
    /// the chip's last line (gpio_device_get_desc).
    fn chip_line(&self, id: u32, data: &[u8]) -> Result<u32> {
        let offset = kstrtouint(data)?;
        let chip = self.mux.chip(id).ok_or(libc::ENODEV)?;
        if offset >= chip.info.num_lines() {
            return Err(libc::EINVAL);
        }
        Ok(chip.base + offset)
    }

    /// A global number for export/unexport: a kstrtol number, or the name
    /// of exactly one line.
    fn line_number(&self, data: &[u8]) -> Result<u32> {
        match kstrtol(data) {
            Ok(n) => u32::try_from(n).map_err(|_| libc::EINVAL),
            Err(libc::EINVAL) => {
                let name = std::str::from_utf8(data).map_err(|_| libc::EINVAL)?;
                let name = name.strip_suffix('\n').unwrap_or(name);
                if name.is_empty() {
                    return Err(libc::EINVAL);
                }
                self.mux.line_by_name(name).map_err(|e| e.errno())
            }
            Err(errno) => Err(errno),
        }
    }
}
