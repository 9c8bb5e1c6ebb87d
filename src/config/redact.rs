//! Describing a connection string without showing its secrets.

use super::StoreConfig;

/// What may be shown of the connection string `text`: the location it
/// parses to (the password masked), or, when it does not parse, nothing of
/// it but its scheme. It never depends on `text` being well formed.
pub(crate) fn redact(text: &str) -> String {
    match text.parse::<StoreConfig>() {
        Ok(config) => config.location.to_string(),
        Err(_) => match text.split_once("://") {
            Some((scheme, _))
                if !scheme.is_empty()
                    && scheme.len() <= 32
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                format!("{scheme}://… (not shown)")
            }
            _ => "a connection string (not shown)".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn shows_the_location_or_at_most_the_scheme() {
        assert_eq!(
            redact("postgresql://me:s3cret@db:5432/x?password=hunter2&sslmode=require"),
            "postgresql://me:***@db:5432/x?password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgresql://me@db/x");
        assert_eq!(redact("sqlite:///./dev.db"), "sqlite file ./dev.db");
        assert_eq!(
            redact("postgresql://me:s3cret/x@db/x"),
            "postgresql://… (not shown)"
        );
        assert_eq!(
            redact("postgresql:/me:s3cret@db/x"),
            "a connection string (not shown)"
        );
        assert_eq!(
            redact("host=db password='s3cret"),
            "a connection string (not shown)"
        );
    }
}
