//! What a read gets: attribute text at once, or data it waits for (an
//! `events` stream, or `value` under `--blocking-value`).

use super::Shared;
use super::content::value_text;
use super::files::OpenFile;
use super::held::Outcome;
use crate::lock;
use nix::errno::Errno;

impl Shared {
    /// Whether a read at `offset` waits for data (see `hold`) instead of
    /// showing the attribute now.
    pub(super) fn read_blocks(&self, file: &OpenFile, offset: u64) -> bool {
        file.stream.is_some()
            || (self.options.blocking_value && file.is_value() && offset == 0 && file.has_read())
    }

    /// A waiting read's answer, if it can complete now.
    pub(super) fn try_complete(&self, file: &OpenFile, size: u32) -> Option<Outcome> {
        if file.stream.is_some() {
            if let Some(data) = file.take_events(size as usize) {
                return Some(if data.is_empty() {
                    Outcome::Error(Errno::EINVAL)
                } else {
                    Outcome::Data(data)
                });
            }
            return file.stream_ended().then(|| Outcome::Data(Vec::new()));
        }
        if file.unread() || file.line_gone() {
            return Some(self.read_text(file, 0, size, |text| match text {
                Ok(data) => Outcome::Data(data.to_vec()),
                Err(errno) => Outcome::Error(errno),
            }));
        }
        None
    }

    /// A read of generated text (every file but `events`): `answer` gets
    /// the bytes at `offset`, or the errno.
    pub(super) fn read_text<T>(
        &self,
        file: &OpenFile,
        offset: u64,
        size: u32,
        answer: impl FnOnce(Result<&[u8], Errno>) -> T,
    ) -> T {
        // `value` is a preallocated sysfs file: every read shows it afresh
        // and re-arms poll. The hot path: no lock is held while the backend
        // reads the line, and nothing is allocated.
        if file.is_value() {
            file.mark_read();
            return answer(value_text(file.line.as_ref()).map(|text| window(text, offset, size)));
        }
        // Other attributes are seq_files: a read at offset 0 shows them,
        // later offsets read that text.
        let mut text = lock(&file.text);
        if offset == 0 || text.is_empty() {
            file.mark_read();
            let attrs = self.attributes();
            if let Err(errno) = file.node.show(&attrs, file.line.as_ref(), &mut text) {
                text.clear();
                return answer(Err(errno));
            }
        }
        answer(Ok(window(&text, offset, size)))
    }
}

/// The part of `text` a read of `size` bytes at `offset` gets.
fn window(text: &[u8], offset: u64, size: u32) -> &[u8] {
    // No `as usize`: on 32-bit targets it would wrap offsets past 4 GiB.
    let start = usize::try_from(offset).map_or(text.len(), |o| o.min(text.len()));
    let end = start.saturating_add(size as usize).min(text.len());
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn windows_end_at_the_text() {
        assert_eq!(window(b"1\n", 0, 4096), b"1\n");
        assert_eq!(window(b"1\n", 1, 1), b"\n");
        assert_eq!(window(b"1\n", 2, 4096), b"");
        assert_eq!(window(b"1\n", 1 << 32, 4096), b"");
        assert_eq!(window(b"1\n", u64::MAX, u32::MAX), b"");
    }
}
