//! Parsing and formatting of attribute text, exactly as the kernel's sysfs
//! does it (lib/kstrtox.c, sysfs_streq, kobject_synth_uevent).

use crate::backend::{Bias, Drive, EdgeDetection};
use nix::errno::Errno;

/// The most a sysfs store sees of one write; the rest is left for the
/// next write, as kernfs does.
pub(super) const PAGE_SIZE: usize = 4096;

/// What a store sees of a write buffer: the kernel NUL-terminates the
/// buffer it copies, so string parsing ends at the first NUL.
fn as_c_string(buf: &[u8]) -> &[u8] {
    buf.iter().position(|&b| b == 0).map_or(buf, |n| &buf[..n])
}

/// `kstrtol(buf, 0, &v)`: optional sign, 0x/0 radix prefixes, one trailing
/// newline. Overflow is ERANGE, anything else malformed EINVAL.
pub(super) fn kstrtol(buf: &[u8]) -> Result<i64, Errno> {
    let s = as_c_string(buf);
    match s.first() {
        Some(b'-') => {
            let magnitude = kstrtoull(&s[1..])?;
            0i64.checked_sub_unsigned(magnitude).ok_or(Errno::ERANGE)
        }
        Some(b'+') => i64::try_from(kstrtoull(&s[1..])?).map_err(|_| Errno::ERANGE),
        _ => i64::try_from(kstrtoull(s)?).map_err(|_| Errno::ERANGE),
    }
}

/// `kstrtouint(buf, 0, &v)`: like kstrtol without the minus sign (one
/// leading `+` is allowed); past u32 is ERANGE.
pub(super) fn kstrtouint(buf: &[u8]) -> Result<u32, Errno> {
    let s = as_c_string(buf);
    let value = kstrtoull(s.strip_prefix(b"+").unwrap_or(s))?;
    u32::try_from(value).map_err(|_| Errno::ERANGE)
}

fn kstrtoull(s: &[u8]) -> Result<u64, Errno> {
    let (radix, digits) = match s {
        [b'0', x, d, ..] if x.eq_ignore_ascii_case(&b'x') && d.is_ascii_hexdigit() => (16, &s[2..]),
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut used = 0;
    for &c in digits {
        let Some(d) = (c as char).to_digit(radix) else {
            break;
        };
        match value
            .checked_mul(radix as u64)
            .and_then(|v| v.checked_add(d as u64))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        used += 1;
    }
    if overflow {
        return Err(Errno::ERANGE);
    }
    if used == 0 {
        return Err(Errno::EINVAL);
    }
    match &digits[used..] {
        [] | [b'\n'] => Ok(value),
        _ => Err(Errno::EINVAL),
    }
}

/// `sysfs_streq`: equal, ignoring one trailing newline on the input.
fn sysfs_streq(buf: &[u8], keyword: &str) -> bool {
    let s = as_c_string(buf);
    s.strip_suffix(b"\n").unwrap_or(s) == keyword.as_bytes()
}

/// Finds which keyword `buf` names (sysfs_match_string).
pub(super) fn keyword<T: Copy>(buf: &[u8], table: &[(&str, T)]) -> Result<T, Errno> {
    table
        .iter()
        .find(|(name, _)| sysfs_streq(buf, name))
        .map(|&(_, v)| v)
        .ok_or(Errno::EINVAL)
}

pub(super) const EDGES: [(&str, EdgeDetection); 4] = [
    ("none", EdgeDetection::None),
    ("rising", EdgeDetection::Rising),
    ("falling", EdgeDetection::Falling),
    ("both", EdgeDetection::Both),
];

pub(super) const BIASES: [(&str, Bias); 4] = [
    ("as-is", Bias::AsIs),
    ("disabled", Bias::Disabled),
    ("pull-up", Bias::PullUp),
    ("pull-down", Bias::PullDown),
];

pub(super) const DRIVES: [(&str, Drive); 3] = [
    ("push-pull", Drive::PushPull),
    ("open-drain", Drive::OpenDrain),
    ("open-source", Drive::OpenSource),
];

/// The name a table gives a value.
pub(super) fn name_of<T: PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("?", |&(name, _)| name)
}

const UEVENT_ACTIONS: [&str; 8] = [
    "add", "remove", "change", "move", "online", "offline", "bind", "unbind",
];

/// Validates a synthetic uevent: `ACTION [UUID [KEY=VALUE ...]]`, as
/// kobject_synth_uevent does (keys and values alphanumeric).
pub(super) fn check_uevent(buf: &[u8]) -> Result<(), Errno> {
    let s = as_c_string(buf);
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let (action, args) = match s.iter().position(|&b| b == b' ') {
        Some(n) => (&s[..n], Some(&s[n + 1..])),
        None => (s, None),
    };
    if !UEVENT_ACTIONS.iter().any(|a| a.as_bytes() == action) {
        return Err(Errno::EINVAL);
    }
    let Some(args) = args else {
        return Ok(());
    };
    const UUID_LEN: usize = 36;
    if args.len() < UUID_LEN || !is_uuid(&args[..UUID_LEN]) {
        return Err(Errno::EINVAL);
    }
    let mut rest = &args[UUID_LEN..];
    while !rest.is_empty() {
        let pair = rest.strip_prefix(b" ").ok_or(Errno::EINVAL)?;
        let end = pair.iter().position(|&b| b == b' ').unwrap_or(pair.len());
        let (key, value) = pair[..end].split_at(
            pair[..end]
                .iter()
                .position(|&b| b == b'=')
                .ok_or(Errno::EINVAL)?,
        );
        let value = &value[1..];
        let word = |w: &[u8]| !w.is_empty() && w.iter().all(u8::is_ascii_alphanumeric);
        if !word(key) || !word(value) {
            return Err(Errno::EINVAL);
        }
        rest = &pair[end..];
    }
    Ok(())
}

fn is_uuid(s: &[u8]) -> bool {
    s.iter().enumerate().all(|(i, &c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstrtol_matches_the_kernel() {
        for (input, want) in [
            (&b"512"[..], Ok(512)),
            (b"512\n", Ok(512)),
            (b"0x200", Ok(512)),
            (b"0X200\n", Ok(512)),
            (b"01000", Ok(512)),
            (b"+512", Ok(512)),
            (b"-1", Ok(-1)),
            (b"-0", Ok(0)),
            (b"0", Ok(0)),
            (b"5\0junk", Ok(5)),
            (b"", Err(Errno::EINVAL)),
            (b"\n", Err(Errno::EINVAL)),
            (b"512\n\n", Err(Errno::EINVAL)),
            (b"512abc", Err(Errno::EINVAL)),
            (b" 512", Err(Errno::EINVAL)),
            (b"0x", Err(Errno::EINVAL)),
            (b"08", Err(Errno::EINVAL)),
            (b"+-5", Err(Errno::EINVAL)),
            (b"--5", Err(Errno::EINVAL)),
            (b"99999999999999999999", Err(Errno::ERANGE)),
            (b"9223372036854775808", Err(Errno::ERANGE)),
            (b"-9223372036854775808", Ok(i64::MIN)),
            (b"-9223372036854775809", Err(Errno::ERANGE)),
        ] {
            assert_eq!(kstrtol(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn kstrtouint_matches_the_kernel() {
        for (input, want) in [
            (&b"3"[..], Ok(3)),
            (b"3\n", Ok(3)),
            (b"+3", Ok(3)),
            (b"0x1f", Ok(31)),
            (b"010", Ok(8)),
            (b"4294967295", Ok(u32::MAX)),
            (b"4294967296", Err(Errno::ERANGE)),
            (b"99999999999999999999", Err(Errno::ERANGE)),
            (b"-1", Err(Errno::EINVAL)),
            (b"-0", Err(Errno::EINVAL)),
            (b"++3", Err(Errno::EINVAL)),
            (b"", Err(Errno::EINVAL)),
            (b"3 ", Err(Errno::EINVAL)),
            (b"led", Err(Errno::EINVAL)),
        ] {
            assert_eq!(
                kstrtouint(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keywords_allow_one_newline() {
        assert_eq!(keyword(b"both\n", &EDGES), Ok(EdgeDetection::Both));
        assert_eq!(keyword(b"both", &EDGES), Ok(EdgeDetection::Both));
        assert_eq!(keyword(b"both\n\n", &EDGES), Err(Errno::EINVAL));
        assert_eq!(keyword(b"Both", &EDGES), Err(Errno::EINVAL));
        assert_eq!(keyword(b" both", &EDGES), Err(Errno::EINVAL));
        assert_eq!(name_of(&DRIVES, Drive::OpenDrain), "open-drain");
    }

    #[test]
    fn uevent_follows_kobject_synth_uevent() {
        let uuid = "12345678-1234-1234-1234-123456789abc";
        for ok in [
            "add".to_string(),
            "change\n".into(),
            format!("add {uuid}"),
            format!("add {uuid} A=1 b2=C3\n"),
        ] {
            assert_eq!(check_uevent(ok.as_bytes()), Ok(()), "{ok:?}");
        }
        for bad in [
            "".to_string(),
            "\n".into(),
            "junk".into(),
            "add ".into(),
            "add nope".into(),
            format!("add {uuid} A"),
            format!("add {uuid} A="),
            format!("add {uuid}  A=1"),
            format!("add {uuid} A-B=1"),
        ] {
            assert_eq!(check_uevent(bad.as_bytes()), Err(Errno::EINVAL), "{bad:?}");
        }
    }
}
