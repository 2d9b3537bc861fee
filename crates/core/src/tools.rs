//! Tool permission patterns (`allowed_tools`): `"*"` allows every tool, a name
//! allows that tool, and a pattern ending in `*` (such as `fetch_*`) allows every
//! tool whose name starts with what precedes the `*`.

/// Why an `allowed_tools` list is rejected; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tool names and patterns: letters, digits, `_`, `-`, `.`, at most 128 characters,
/// with `*` allowed only as the last character.
pub fn check_pattern(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() {
        return Err(PatternError("entries must not be empty strings".into()));
    }
    if pattern.len() > 128 {
        return Err(PatternError(format!(
            "entry \"{pattern}\" is longer than 128 characters"
        )));
    }
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        let rule = if c == '*' {
            "'*' may only end a pattern".to_string()
        } else {
            format!("character {c:?} is not allowed (use letters, digits, _ - . and a final *)")
        };
        return Err(PatternError(format!("entry \"{pattern}\": {rule}")));
    }
    Ok(())
}

/// True when `tool` is allowed by any of `patterns`.
pub fn allows<S: AsRef<str>>(patterns: &[S], tool: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.as_ref();
        match p.strip_suffix('*') {
            Some(prefix) => tool.starts_with(prefix),
            None => p == tool,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_exact_and_prefix() {
        assert!(allows(&["*"], "anything"));
        assert!(allows(&["fetch_jobs"], "fetch_jobs"));
        assert!(!allows(&["fetch_jobs"], "fetch_jobs2"));
        assert!(!allows(&["fetch_jobs"], "fetch"));
        assert!(allows(&["fetch_*"], "fetch_parts"));
        assert!(!allows(&["fetch_*"], "create_job"));
        assert!(!allows::<&str>(&[], "fetch_jobs"));
    }

    #[test]
    fn the_seed_read_only_key() {
        let ro = [
            "fetch_jobs",
            "fetch_parts",
            "fetch_tasks",
            "get_dashboard_stats",
        ];
        assert!(allows(&ro, "get_dashboard_stats"));
        assert!(!allows(&ro, "create_job"));
        assert!(!allows(&ro, "fetch_ncrs"));
    }

    #[test]
    fn pattern_rules() {
        assert!(check_pattern("*").is_ok());
        assert!(check_pattern("fetch_*").is_ok());
        assert!(check_pattern("mes.fetch-jobs").is_ok());
        assert!(check_pattern("").is_err());
        assert!(check_pattern("fe*tch")
            .unwrap_err()
            .0
            .contains("may only end"));
        assert!(check_pattern("drop table").unwrap_err().0.contains("' '"));
        assert!(check_pattern(&"a".repeat(129)).is_err());
    }
}
