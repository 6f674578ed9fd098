//! The simulator as the filesystem's control tree.

use crate::backend::sim::SimBackend;
use crate::fs::{ControlTree, control};

fn errno(e: crate::backend::BackendError) -> i32 {
    e.errno
}

impl ControlTree for SimBackend {
    fn chips(&self) -> Vec<(String, u32)> {
        SimBackend::chips(self)
    }

    fn pull(&self, label: &str, offset: u32) -> control::Result<bool> {
        SimBackend::pull(self, label, offset).map_err(errno)
    }

    fn set_pull(&self, label: &str, offset: u32, pull_up: bool) -> control::Result<()> {
        SimBackend::set_pull(self, label, offset, pull_up).map_err(errno)
    }

    fn level(&self, label: &str, offset: u32) -> control::Result<bool> {
        SimBackend::level(self, label, offset).map_err(errno)
    }

    fn hog(&self, label: &str, offset: u32) -> control::Result<Option<String>> {
        SimBackend::hog(self, label, offset).map_err(errno)
    }

    fn set_hog(&self, label: &str, offset: u32, consumer: Option<String>) -> control::Result<()> {
        SimBackend::set_hog(self, label, offset, consumer).map_err(errno)
    }
}
