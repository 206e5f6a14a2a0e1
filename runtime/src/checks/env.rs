//! The environment variable check.

use std::env::VarError;

use crate::Outcome;

/// Checks that the environment variable `name` is set and not empty.
///
/// The value is never copied into the outcome (it may be a secret): the error names the
/// variable only. A value that is not valid Unicode passes (it is set), with a warning, since
/// [`std::env::var`] would reject it.
///
/// It never waits, so it serves `async` validators as well.
///
/// ```
/// use storage_availability::checks;
///
/// assert!(checks::env_present("PATH").is_ok());
///
/// let outcome = checks::env_present("SURELY_NOT_SET_BY_ANYONE_42");
/// assert_eq!(
///     outcome.last_error(),
///     Some("environment variable SURELY_NOT_SET_BY_ANYONE_42 is not set")
/// );
/// ```
pub fn env_present(name: &str) -> Outcome {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Outcome::failed(format!("`{name}` is not a valid environment variable name"));
    }
    match std::env::var(name) {
        Ok(value) if value.is_empty() => {
            Outcome::failed(format!("environment variable {name} is set but empty"))
        }
        Ok(_) => Outcome::ok(),
        Err(VarError::NotPresent) => {
            Outcome::failed(format!("environment variable {name} is not set"))
        }
        Err(VarError::NotUnicode(_)) => Outcome::ok().with_warning(format!(
            "environment variable {name} is set but its value is not valid Unicode"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_fail_without_panicking() {
        for name in ["", "A=B", "A\0B"] {
            let outcome = env_present(name);
            let error = outcome.last_error().unwrap();
            assert!(
                error.contains("not a valid environment variable name"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_value_never_appears_in_the_outcome() {
        // PATH is set in every test environment; its value must not leak.
        let value = std::env::var("PATH").unwrap();
        let outcome = env_present("PATH");
        assert!(outcome.is_ok());
        assert!(outcome.warnings().iter().all(|w| !w.contains(&value)));
    }
}
