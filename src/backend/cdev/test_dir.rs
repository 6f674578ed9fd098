//! Scratch directories for the unit tests that need a file tree.

use std::fs;
use std::path::{Path, PathBuf};

/// A scratch directory (removed when the first half is dropped) and its
/// canonical path, which the sysfs walk's resolved links are compared with.
pub(super) fn scratch_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("gpiofs-cdev-test-")
        .tempdir()
        .unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

/// Writes a file, creating its directory.
pub(super) fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}
