//! Setting names: which environment variables and TOML keys are settings, and the refusal of one
//! that is not (naming the nearest setting).

use super::Settings;

impl Settings {
    /// The settings key of variable `name` (`CHAT_BCRYPT_COST` → `bcrypt_cost`, `DATABASE_URL`
    /// → `database_url`), as in the TOML file.
    pub(super) fn key_of(name: &str) -> String {
        name.strip_prefix("CHAT_").unwrap_or(name).to_lowercase()
    }

    /// Whether `name` is one of the variables Kubernetes puts into every pod for a Service
    /// named `chat` (`CHAT_SERVICE_HOST`, `CHAT_PORT`, `CHAT_PORT_8080_TCP_ADDR`, ...): not a
    /// setting, and not a typo either.
    fn is_service_link(name: &str) -> bool {
        name.starts_with("CHAT_SERVICE_") || name == "CHAT_PORT" || name.starts_with("CHAT_PORT_")
    }

    /// Refuses names that are not settings: `names` are environment variables (`CHAT_*` only are
    /// looked at; `RUST_LOG` and other programs' variables are not ours), or with `file` the keys
    /// of that TOML file. Errors: `"<name> is not a setting (did you mean <nearest>?)"`.
    pub fn check_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
        file: Option<&str>,
    ) -> Result<(), String> {
        let known: Vec<String> = match file {
            None => Self::VARIABLES.iter().map(|v| v.to_string()).collect(),
            Some(_) => Self::VARIABLES
                .iter()
                .filter(|v| **v != "CHAT_CONFIG")
                .map(|v| Self::key_of(v))
                .collect(),
        };
        for name in names {
            let ours = name.starts_with("CHAT_") && !Self::is_service_link(name);
            if file.is_none() && !ours || known.iter().any(|k| k == name) {
                continue;
            }
            let nearest = known
                .iter()
                .min_by_key(|k| strsim::levenshtein(k, name))
                .cloned()
                .unwrap_or_default();
            return Err(match file {
                None => format!("{name} is not a setting (did you mean {nearest}?)"),
                Some(file) => {
                    format!("{file}: {name:?} is not a setting (did you mean {nearest:?}?)")
                }
            });
        }
        Ok(())
    }
}
