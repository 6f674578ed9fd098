//! The GPIO character-device backend (uAPI v2, through gpiocdev).
//! Being written; see the helper's task.

use crossbeam_channel::Sender;

use super::{
    Backend, BackendError, BackendEvent, ChipInfo, LineConfig, LineRequest, LineUsage, Result,
};

pub struct CdevBackend;

impl CdevBackend {
    pub fn new() -> Self {
        Self
    }
}

impl Backend for CdevBackend {
    fn start(&self, _events: Sender<BackendEvent>) -> Result<Vec<ChipInfo>> {
        Err(BackendError::new(
            libc::ENOSYS,
            "character-device backend not built yet",
        ))
    }
    fn line_usage(&self, _chip: &str, _offset: u32) -> Result<LineUsage> {
        Err(BackendError::new(libc::ENOSYS, "not built yet"))
    }
    fn request(
        &self,
        _c: &str,
        _o: u32,
        _n: &str,
        _cfg: &LineConfig,
    ) -> Result<Box<dyn LineRequest>> {
        Err(BackendError::new(libc::ENOSYS, "not built yet"))
    }
}
