//! The parts of a libpq connection string (key=value words or a postgresql:// URL)
//! that tokio-postgres does not parse: sslmode verify-ca / verify-full and
//! sslrootcert. They are taken out here and enforced by `tls`.

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verify {
    Ca,
    Full,
}

/// The connection string without `sslrootcert` and with a verify sslmode replaced by
/// `require` (which still refuses a server without TLS), plus what was taken out.
pub fn split_verification(url: &str) -> Result<(String, Option<Verify>, Option<String>), String> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let pairs = if is_url {
        url_pairs(url)
    } else {
        keyword_pairs(url)?
    };
    let (mut verify, mut root) = (None, None);
    let mut kept = Vec::new();
    for (key, value) in pairs {
        match (key.as_str(), value.as_str()) {
            ("sslmode", "verify-ca") => verify = Some(Verify::Ca),
            ("sslmode", "verify-full") => verify = Some(Verify::Full),
            ("sslrootcert", _) => {
                root = Some(value);
                continue;
            }
            _ => {}
        }
        let value = if verify.is_some() && key == "sslmode" {
            "require".to_string()
        } else {
            value
        };
        kept.push((key, value));
    }
    if verify.is_none() && root.is_none() {
        return Ok((url.to_string(), None, None));
    }
    // As libpq: require with a root certificate file given verifies like verify-ca.
    if root.is_some()
        && verify.is_none()
        && kept.iter().any(|(k, v)| k == "sslmode" && v == "require")
    {
        verify = Some(Verify::Ca);
    }
    let rebuilt = if is_url {
        let base = url.split('?').next().unwrap_or(url);
        let query: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", query.join("&"))
        }
    } else {
        let parts: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect();
        parts.join(" ")
    };
    Ok((rebuilt, verify, root))
}

/// The query parameters of a postgresql:// URL, as written (percent-encoding kept,
/// except in sslrootcert, which names a file).
fn url_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = if k == "sslrootcert" {
                percent_decode(v)
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's `key=value key2='quoted \' value'` form.
fn keyword_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "DATABASE_URL: missing \"=\" after \"{key}\" in the connection string"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!("DATABASE_URL: unterminated quoted value of {key}"))
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_taken_out_of_keyword_strings() {
        let (url, verify, root) = split_verification(
            "host=db.example port=5432 sslmode=verify-full sslrootcert='/etc/ca dir/root.crt' user=x",
        )
        .unwrap();
        assert_eq!(verify, Some(Verify::Full));
        assert_eq!(root.as_deref(), Some("/etc/ca dir/root.crt"));
        assert_eq!(
            url,
            "host='db.example' port='5432' sslmode='require' user='x'"
        );
    }

    #[test]
    fn verify_modes_are_taken_out_of_urls() {
        let (url, verify, root) = split_verification(
            "postgresql://u@h:5/db?sslmode=verify-ca&sslrootcert=%2Ftmp%2Froot.crt&application_name=a",
        )
        .unwrap();
        assert_eq!(verify, Some(Verify::Ca));
        assert_eq!(root.as_deref(), Some("/tmp/root.crt"));
        assert_eq!(
            url,
            "postgresql://u@h:5/db?sslmode=require&application_name=a"
        );
    }

    #[test]
    fn other_strings_keep_their_meaning() {
        let plain = "host=/run/pg dbname=x sslmode=require";
        assert_eq!(
            split_verification(plain).unwrap(),
            (plain.to_string(), None, None)
        );
        let (url, _, _) = split_verification("postgresql://u@h/db").unwrap();
        assert_eq!(url, "postgresql://u@h/db");
        assert!(split_verification("host=x user").is_err());
        assert!(split_verification("password='unterminated").is_err());
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain() {
        let (url, verify, root) =
            split_verification("host=h sslmode=require sslrootcert=/ca.crt").unwrap();
        assert_eq!(
            (verify, root.as_deref()),
            (Some(Verify::Ca), Some("/ca.crt"))
        );
        assert_eq!(url, "host='h' sslmode='require'");
    }
}
