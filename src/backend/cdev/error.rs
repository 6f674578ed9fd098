//! gpiocdev and I/O errors as [`BackendError`]s: the errno the caller sees
//! is the kernel's wherever there is one.

use nix::errno::Errno;
use std::fmt::Display;
use std::io;

use gpiocdev_uapi as uapi;

use crate::backend::BackendError;

/// The OS errno inside a gpiocdev error, else the closest match.
fn errno_of(e: &gpiocdev::Error) -> Errno {
    use gpiocdev::Error as E;
    match e {
        // An io::Error without an OS code becomes `Errno(0)`: not an errno.
        E::Os(uapi::Errno(n)) | E::Uapi(_, uapi::Error::Os(uapi::Errno(n))) if *n > 0 => {
            Errno::from_raw(*n)
        }
        E::Os(_) | E::Uapi(..) => Errno::EIO,
        E::GpioChip(..) | E::NoGpioChips() => Errno::ENODEV,
        E::InvalidArgument(_) | E::NonuniqueLineName(_) => Errno::EINVAL,
        E::AbiLimitation(..) | E::UnsupportedAbi(..) | E::NoAbiSupport() => Errno::EOPNOTSUPP,
        E::UnexpectedResponse(..) => Errno::EIO,
    }
}

pub(super) fn cdev_error(context: impl Display, e: &gpiocdev::Error) -> BackendError {
    BackendError::new(errno_of(e), format!("{context}: {e}"))
}

pub(super) fn io_error(context: impl Display, e: &io::Error) -> BackendError {
    BackendError::new(
        e.raw_os_error().map_or(Errno::EIO, Errno::from_raw),
        format!("{context}: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cdev::chip::{DEV, list_chips};
    use std::path::Path;

    #[test]
    fn errnos() {
        let os = gpiocdev::Error::from(io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(errno_of(&os), Errno::EACCES);
        let no_code = gpiocdev::Error::from(io::Error::other("no OS code"));
        assert_eq!(errno_of(&no_code), Errno::EIO);
        let busy = gpiocdev::Error::Uapi(
            gpiocdev::UapiCall::GetLine,
            uapi::Error::Os(uapi::Errno(libc::EBUSY)),
        );
        assert_eq!(errno_of(&busy), Errno::EBUSY);
        let zero =
            gpiocdev::Error::Uapi(gpiocdev::UapiCall::GetLine, uapi::Error::Os(uapi::Errno(0)));
        assert_eq!(errno_of(&zero), Errno::EIO);
        let chip =
            gpiocdev::Error::GpioChip("/dev/null".into(), gpiocdev::chip::ErrorKind::NotGpioDevice);
        assert_eq!(errno_of(&chip), Errno::ENODEV);
        assert_eq!(
            errno_of(&gpiocdev::Error::InvalidArgument("x".into())),
            Errno::EINVAL
        );
        assert_eq!(
            errno_of(&gpiocdev::Error::NoAbiSupport()),
            Errno::EOPNOTSUPP
        );
        // A real uAPI failure, when this host has a GPIO chip to try.
        if let Some(name) = list_chips(Path::new(DEV)).first()
            && let Ok(chip) = gpiocdev::Chip::from_path(Path::new(DEV).join(name))
        {
            let e = chip.line_info(u32::MAX).unwrap_err();
            assert_eq!(errno_of(&e), Errno::EINVAL, "{e:?}");
        }
    }
}
