//! Install ("IMD") commands: per-OS templates with `{token}` and `{server}` filled in.

use serde::{Deserialize, Serialize};

/// A target operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Windows (msiexec).
    Windows,
    /// macOS (installer).
    Macos,
    /// Linux (package manager).
    Linux,
}

impl Os {
    /// All, in display order.
    pub const ALL: [Os; 3] = [Os::Windows, Os::Macos, Os::Linux];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Windows => "windows",
            Os::Macos => "macos",
            Os::Linux => "linux",
        }
    }
}

/// Install command templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Templates {
    /// Windows template.
    pub windows: String,
    /// macOS template.
    pub macos: String,
    /// Linux template.
    pub linux: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            windows: r#"msiexec /i mdclient.msi /qn MDT_SERVER="{server}" MDT_TOKEN="{token}""#
                .into(),
            macos: r#"sudo MDT_SERVER="{server}" MDT_TOKEN="{token}" installer -pkg mdclient.pkg -target /"#
                .into(),
            linux: r#"sudo MDT_SERVER="{server}" MDT_TOKEN="{token}" apt-get install -y ./mdclient.deb"#
                .into(),
        }
    }
}

/// Why a template or server URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A template lacks `{token}`.
    #[error("the {0} install template has no {{token}} placeholder")]
    NoTokenPlaceholder(&'static str),
    /// The server URL could break out of the command's quoting.
    #[error(
        "server_url {0:?} must be an http:// or https:// URL without spaces, quotes or shell metacharacters"
    )]
    BadServerUrl(String),
}

/// Checks that a server URL is safe to paste into a shell command.
///
/// # Errors
/// [`InstallError::BadServerUrl`] unless it is `http(s)://` followed by URL-safe characters.
pub fn check_server_url(url: &str) -> Result<(), InstallError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && r.len() < 2048
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@%+=,".contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(InstallError::BadServerUrl(url.to_owned()))
    }
}

impl Templates {
    /// Checks every template has a `{token}` placeholder.
    ///
    /// # Errors
    /// [`InstallError::NoTokenPlaceholder`] naming the OS.
    pub fn check(&self) -> Result<(), InstallError> {
        for os in Os::ALL {
            if !self.get(os).contains("{token}") {
                return Err(InstallError::NoTokenPlaceholder(os.as_str()));
            }
        }
        Ok(())
    }

    /// The template for `os`.
    pub fn get(&self, os: Os) -> &str {
        match os {
            Os::Windows => &self.windows,
            Os::Macos => &self.macos,
            Os::Linux => &self.linux,
        }
    }

    /// The command for `os`. The token is base64url and dots and the server URL is
    /// checked at configuration time, so neither can escape the template's quoting.
    pub fn render(&self, os: Os, token: &str, server: &str) -> String {
        self.get(os)
            .replace("{server}", server)
            .replace("{token}", token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_checks() {
        let t = Templates::default();
        t.check().unwrap();
        let cmd = t.render(Os::Windows, "a.b.c", "https://m.example:8443");
        assert_eq!(
            cmd,
            r#"msiexec /i mdclient.msi /qn MDT_SERVER="https://m.example:8443" MDT_TOKEN="a.b.c""#
        );
        assert!(check_server_url("https://m.example/x").is_ok());
        for bad in [
            "m.example",
            "https://a\"b",
            "https://a b",
            "https://$(x)",
            "ftp://x",
            "https://",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
        let t = Templates {
            linux: "install".into(),
            ..Templates::default()
        };
        assert_eq!(t.check(), Err(InstallError::NoTokenPlaceholder("linux")));
    }
}
