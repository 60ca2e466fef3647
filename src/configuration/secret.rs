//! Secrets from the environment or from a file only its owner can read (a systemd credential among them).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
        (None, false) => {
            let path = credential_path(key, file, std::env::var_os(CREDENTIALS_VAR).as_deref())?;
            read_private_file(key, &path).map(Some)
        }
    }
}

/// systemd's `LoadCredential=` puts each credential in the directory named by this variable.
const CREDENTIALS_VAR: &str = "CREDENTIALS_DIRECTORY";

/// The path a `*_file` value names: as written, or with a leading `$CREDENTIALS_DIRECTORY/` (or
/// `${CREDENTIALS_DIRECTORY}/`) replaced by that directory, so a config file can name a systemd credential.
fn credential_path(key: &str, file: &str, credentials: Option<&OsStr>) -> Result<PathBuf, ConfigError> {
    let Some(name) = ["$CREDENTIALS_DIRECTORY/", "${CREDENTIALS_DIRECTORY}/"].iter().find_map(|p| file.strip_prefix(p))
    else {
        return Ok(PathBuf::from(file));
    };
    match credentials {
        Some(dir) if !dir.is_empty() => Ok(Path::new(dir).join(name)),
        _ => Err(ConfigError::new(format!(
            "{key}_file: names $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for a unit with LoadCredential=)"
        ))),
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
    fn a_file_may_name_a_systemd_credential() {
        let dir = Some(OsStr::new("/run/credentials/tidings.service"));
        let path = credential_path("smtp.password", "$CREDENTIALS_DIRECTORY/smtp-password", dir).unwrap();
        assert_eq!(path, Path::new("/run/credentials/tidings.service/smtp-password"));
        let path = credential_path("smtp.password", "${CREDENTIALS_DIRECTORY}/smtp-password", dir).unwrap();
        assert_eq!(path, Path::new("/run/credentials/tidings.service/smtp-password"));
        assert_eq!(credential_path("smtp.password", "/etc/p", None).unwrap(), Path::new("/etc/p"));
        let err = credential_path("smtp.password", "$CREDENTIALS_DIRECTORY/p", None).unwrap_err().to_string();
        assert!(err.contains("smtp.password_file") && err.contains("LoadCredential"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = resolve("links.signing_keys", None, "/nonexistent/keys").unwrap_err().to_string();
        assert!(err.contains("links.signing_keys_file") && err.contains("/nonexistent/keys"), "{err}");
    }
}
