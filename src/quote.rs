//! Names as GNU ls shows them on a terminal (its `shell-escape` quoting style): a name the
//! shell would take apart is quoted (`'a b'`), and bytes that are not printable (control
//! characters, bytes that are not UTF-8) are written as `$'\ooo'` escapes, so that a name
//! made by someone else can neither garble the terminal (escape sequences) nor hide what it
//! is. Output that is not a terminal keeps the raw bytes, as GNU ls does.

use std::borrow::Cow;

/// Bytes that never need quoting.
fn is_safe(b: u8) -> bool {
    // `#` and `~` only matter first (a comment, a home directory): see `shell_escape_in`.
    b.is_ascii_alphanumeric() || b"%+,-./:=@_#~".contains(&b)
}

/// The printable runs and the escaped bytes of `name`: printable characters are kept whole
/// (UTF-8 included), everything else is one escaped byte.
enum Piece<'a> {
    Text(&'a str),
    Byte(u8),
}

fn pieces(name: &[u8], utf8: bool) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let valid = match std::str::from_utf8(rest) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or(""),
        };
        let printable_end = valid
            .char_indices()
            .find(|(_, c)| c.is_control() || (!utf8 && !c.is_ascii()))
            .map_or(valid.len(), |(at, _)| at);
        if printable_end > 0 {
            out.push(Piece::Text(&valid[..printable_end]));
            rest = &rest[printable_end..];
        } else {
            out.push(Piece::Byte(rest[0]));
            rest = &rest[1..];
        }
    }
    out
}

/// Whether the locale's characters are UTF-8 (else, as in the C locale, every byte above
/// 127 is unprintable), from `LC_ALL`, `LC_CTYPE`, `LANG` as the C library reads them.
fn utf8_locale() -> bool {
    let value = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    value.contains("utf-8") || value.contains("utf8")
}

fn escape_byte(b: u8) -> String {
    match b {
        b'\t' => "\\t".into(),
        b'\n' => "\\n".into(),
        b'\r' => "\\r".into(),
        _ => format!("\\{b:03o}"),
    }
}

/// `name` quoted as GNU ls quotes it on a terminal, or as it is when it needs nothing.
pub(crate) fn shell_escape(name: &[u8]) -> Cow<'_, [u8]> {
    shell_escape_in(name, utf8_locale())
}

fn shell_escape_in(name: &[u8], utf8: bool) -> Cow<'_, [u8]> {
    let parts = pieces(name, utf8);
    let all_text = parts.iter().all(|p| matches!(p, Piece::Text(_)));
    let first_special = matches!(name.first(), Some(b'~' | b'#'));
    let plain = |c: char| (c.is_ascii() && is_safe(c as u8)) || !c.is_ascii();
    let text = String::from_utf8_lossy(name);
    if !name.is_empty() && all_text && !first_special && text.chars().all(plain) {
        return Cow::Borrowed(name);
    }
    if all_text && text.contains('\'') && !text.contains(['"', '$', '`', '\\', '!']) {
        return Cow::Owned(format!("\"{text}\"").into_bytes());
    }
    // Opened at once; closed around each run of escaped bytes and each single quote.
    let mut out = String::from("'");
    let mut quoted = true;
    let mut escaping = false;
    for part in &parts {
        match part {
            Piece::Text(t) => {
                if escaping {
                    out.push('\'');
                    escaping = false;
                }
                for c in t.chars() {
                    if c == '\'' {
                        if quoted {
                            out.push('\'');
                            quoted = false;
                        }
                        out.push_str("\\'");
                        continue;
                    }
                    if !quoted {
                        out.push('\'');
                        quoted = true;
                    }
                    out.push(c);
                }
            }
            Piece::Byte(b) => {
                if quoted {
                    out.push('\'');
                    quoted = false;
                }
                if !escaping {
                    out.push_str("$'");
                    escaping = true;
                }
                out.push_str(&escape_byte(*b));
            }
        }
    }
    if quoted || escaping {
        out.push('\'');
    }
    Cow::Owned(out.into_bytes())
}

/// True when [`shell_escape`] changes `name` (ls then indents the other names by one column).
pub(crate) fn needs_quotes(name: &[u8]) -> bool {
    matches!(shell_escape(name), Cow::Owned(_))
}

#[cfg(test)]
mod tests {

    fn q(name: &[u8]) -> String {
        String::from_utf8(super::shell_escape_in(name, false).into_owned()).unwrap()
    }

    fn q8(name: &[u8]) -> String {
        String::from_utf8(super::shell_escape_in(name, true).into_owned()).unwrap()
    }

    /// Each as `ls --quoting-style=shell-escape` (coreutils 9.1) printed it, LC_ALL=C and
    /// C.UTF-8.
    #[test]
    fn names_are_quoted_as_gnu_ls_quotes_them_on_a_terminal() {
        assert_eq!(q(b"plain.txt"), "plain.txt");
        assert_eq!(q(b"x#y"), "x#y");
        assert_eq!(q(b"a b"), "'a b'");
        assert_eq!(q(b"bang!"), "'bang!'");
        assert_eq!(q(b"q\"uote"), "'q\"uote'");
        assert_eq!(q(b"don't"), "\"don't\"");
        assert_eq!(q(b"caf\xe9"), "'caf'$'\\351'");
        assert_eq!(q(b"\x1b[31mred"), "''$'\\033''[31mred'");
        assert_eq!(q(b"tab\there"), "'tab'$'\\t''here'");
        assert_eq!(q(b"~home"), "'~home'");
        assert_eq!(q("Grüße".as_bytes()), "'Gr'$'\\303\\274\\303\\237''e'");
        assert_eq!(q8("Grüße".as_bytes()), "Grüße");
        assert_eq!(q8(b"caf\xe9"), "'caf'$'\\351'");
    }
}
