//! The control tree (`sim/<LABEL>/line<OFFSET>/{pull,value,hog}`): what it
//! needs of a simulator. The daemon hands an implementation in, so the
//! filesystem knows backends only through the multiplexer.

/// Errors are errnos, as the tree answers them.
pub type Result<T> = std::result::Result<T, i32>;

/// A set of simulated chips whose wires the control tree drives.
pub trait ControlTree: Send + Sync {
    /// Labels and line counts of the simulated chips, in chip order.
    fn chips(&self) -> Vec<(String, u32)>;
    /// Whether an undriven input reads high (gpio-sim's `pull`).
    fn pull(&self, label: &str, offset: u32) -> Result<bool>;
    fn set_pull(&self, label: &str, offset: u32, pull_up: bool) -> Result<()>;
    /// The level on the wire: what an output drives, or the pull.
    fn level(&self, label: &str, offset: u32) -> Result<bool>;
    /// Who holds the line outside gpiofs, if anyone.
    fn hog(&self, label: &str, offset: u32) -> Result<Option<String>>;
    fn set_hog(&self, label: &str, offset: u32, consumer: Option<String>) -> Result<()>;
}
