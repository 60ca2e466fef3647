//! Secrets from the environment or from a file only its owner can read.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;

/// Picks the secret `key` from its inline value (environment) or from `file`; both set is an error. A file that
/// others can read is refused: secrets live in 0600 files. Never puts the secret in an error message.
pub(super) fn resolve(
    key: &str,
    inline: Option<&SecretString>,
    file: &str,
) -> Result<Option<SecretString>, ConfigError> {
    let file = file.trim();
    match (inline, file.is_empty()) {
        (Some(_), false) => Err(ConfigError::new(format!("{key}: set either the value or `{key}_file`, not both"))),
        (Some(value), true) => {
            let trimmed = value.expose_secret().trim();
            Ok((!trimmed.is_empty()).then(|| SecretString::from(trimmed.to_owned())))
        }
        (None, true) => Ok(None),
        (None, false) => read_private_file(key, Path::new(file)).map(Some),
    }
}

fn read_private_file(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let shown = path.display();
    let metadata = fs::metadata(path).map_err(|e| ConfigError::new(format!("{key}_file: cannot read {shown}: {e}")))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::new(format!(
            "{key}_file: {shown} can be read by others (mode {mode:o}); run `chmod 600 {shown}`"
        )));
    }
    let text =
        fs::read_to_string(path).map_err(|e| ConfigError::new(format!("{key}_file: cannot read {shown}: {e}")))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with_mode(content: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        fs::set_permissions(file.path(), fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    #[test]
    fn a_private_file_is_read_and_trimmed() {
        let file = file_with_mode("hunter2-but-longer\n", 0o600);
        let secret = resolve("smtp.password", None, file.path().to_str().unwrap()).unwrap().unwrap();
        assert_eq!(secret.expose_secret(), "hunter2-but-longer");
    }

    #[test]
    fn a_file_others_can_read_is_refused_without_showing_its_content() {
        let file = file_with_mode("hunter2-but-longer\n", 0o644);
        let err = resolve("smtp.password", None, file.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("smtp.password_file") && err.contains("mode 644") && err.contains("chmod 600"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn a_value_and_a_file_together_are_refused() {
        let file = file_with_mode("x", 0o600);
        let inline = SecretString::from("y".to_owned());
        let err = resolve("smtp.password", Some(&inline), file.path().to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not both"));
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = resolve("links.signing_keys", None, "/nonexistent/keys").unwrap_err().to_string();
        assert!(err.contains("links.signing_keys_file") && err.contains("/nonexistent/keys"), "{err}");
    }
}
