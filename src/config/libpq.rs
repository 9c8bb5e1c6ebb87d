//! libpq `key=value` connection strings (`host=h user=u password=p
//! dbname=db`), which the `postgres` driver accepts too: read the way it
//! reads them (values may be `'quoted'`, `\` escapes the next character).

use super::postgres::is_known_key;
use super::url::malformed;
use crate::error::{Error, Result};

/// True when `text` starts like a `key=value` string rather than a URL: a
/// name of letters, digits and `_`, then `=` (a URL's scheme is followed by
/// `:`).
pub(super) fn is_key_value(text: &str) -> bool {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    end > 0 && text[end..].trim_start().starts_with('=')
}

/// The `key=value` pairs of `text`, each key once. Errors echo nothing of
/// the text but known parameter names.
pub(super) fn parse(text: &str) -> Result<Vec<(String, String)>> {
    let mut chars = text.chars().peekable();
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if chars.peek().is_some() {
                return Err(malformed("a key=value string has a value without a name"));
            }
            return Ok(params);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(malformed(
                "a key=value string has a word without '=' (quote values that hold spaces: \
                 password='…')",
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(malformed(
                            "a key=value string has an unterminated quoted value",
                        ));
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
            if value.is_empty() {
                return Err(malformed(
                    "a key=value string has an empty value (write '')",
                ));
            }
        }
        if params.iter().any(|(k, _)| *k == key) {
            let field = if is_known_key(&key) || is_store_key(&key) {
                key
            } else {
                "url".to_owned()
            };
            return Err(Error::invalid(field, "given twice"));
        }
        params.push((key, value));
    }
}

fn is_store_key(key: &str) -> bool {
    super::url::STORE_KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quotes_and_escapes_like_the_driver() {
        let params = parse(" host = h  password='a b\\'c\\\\' user=u\\ v dbname= d").unwrap();
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("host"), Some("h"));
        assert_eq!(get("password"), Some("a b'c\\"));
        assert_eq!(get("user"), Some("u v"));
        assert_eq!(get("dbname"), Some("d"));
        assert!(is_key_value("host=h"));
        assert!(is_key_value("  user =u"));
        assert!(!is_key_value("postgresql://u@h/db?x=1"));
        assert!(!is_key_value("u:p=x@h"));
    }

    #[test]
    fn refuses_without_echoing() {
        for text in [
            "host=h password='hunter2",
            "host=h hunter2",
            "host=h password=",
            "host=h =hunter2",
            "host=h hunter2=1 hunter2=2",
        ] {
            match parse(text) {
                Err(e) => assert!(!format!("{e:?}").contains("hunter2"), "{text}: {e:?}"),
                Ok(params) => panic!("{text}: {params:?}"),
            }
        }
    }
}
