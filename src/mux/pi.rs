//! `--pi-numbers`: the Raspberry Pi's main GPIO controller, found by its
//! label, gets base 0, so old programs' numbers (17, 27, ...) work again as
//! before kernel 6.6.

/// Labels of the Pi's main GPIO controller: Pi 5 (RP1), Pi 4, Pi 0-3.
pub const CONTROLLER_LABELS: [&str; 3] = ["pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835"];

/// The device tree's model line (e.g. "Raspberry Pi 4 Model B Rev 1.4"),
/// known from boot on, before any GPIO driver has probed.
pub fn machine_model() -> Option<String> {
    let raw = std::fs::read("/proc/device-tree/model").ok()?;
    let text = String::from_utf8_lossy(&raw);
    Some(text.trim_end_matches('\0').trim().to_string())
}

/// Decides whether `--pi-numbers` can work, given the labels of the chips
/// present now and the machine's model (None when unknown or simulated).
/// A Pi whose controller has not probed yet is fine: the controller gets
/// base 0 when it appears. Returns the line to log.
pub fn check<'a>(
    mut labels: impl Iterator<Item = &'a str>,
    model: Option<&str>,
) -> Result<String, String> {
    if let Some(label) = labels.find(|l| CONTROLLER_LABELS.contains(l)) {
        return Ok(format!("--pi-numbers: {label} has base 0"));
    }
    match model {
        Some(model) if model.starts_with("Raspberry Pi") => Ok(format!(
            "--pi-numbers: {model}: its GPIO controller ({}) gets base 0 when it appears",
            CONTROLLER_LABELS.join(", ")
        )),
        _ => Err(format!(
            "--pi-numbers: this is not a Raspberry Pi: no GPIO chip is labelled {} \
             and the device tree's model is {}. For another board, pin a chip's \
             base with --base LABEL=N (labels: gpiodetect).",
            CONTROLLER_LABELS.join(", "),
            model.map_or("unknown".to_string(), |m| format!("'{m}'"))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pi_is_known_by_its_controller_or_its_model() {
        assert!(check(["demo", "pinctrl-bcm2711"].into_iter(), None).is_ok());
        assert!(check(["gpio-brcmstb@107d508500", "pinctrl-rp1"].into_iter(), None).is_ok());
        assert!(check(std::iter::empty(), Some("Raspberry Pi 3 Model B Rev 1.2")).is_ok());
        let error = check(["demo"].into_iter(), Some("QEMU Virt")).unwrap_err();
        assert!(error.contains("not a Raspberry Pi"), "{error}");
        assert!(check(std::iter::empty(), None).is_err());
    }
}
