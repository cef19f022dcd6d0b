//! The settings' tests: documented variables, safe defaults, refused names, validation.

use super::*;

#[test]
fn every_variable_is_documented_here_and_in_the_configuration_docs() {
    let docs = include_str!("../../../../docs/configuration.md");
    let module = include_str!("mod.rs");
    for name in Settings::VARIABLES {
        let row = format!("| `{name}` |");
        assert!(
            docs.contains(&row),
            "docs/configuration.md has no row for {name}"
        );
        assert!(
            module.contains(&format!("//! {row}")),
            "the module doc has no row for {name}"
        );
    }
}

#[test]
fn defaults_are_valid_and_safe() {
    let defaults = Settings::default();
    defaults.validate().unwrap();
    assert!(!defaults.door_avito, "door 001 has no auth: off by default");
    assert_eq!(defaults.avito_listen_addr(), "127.0.0.1:9000");
    assert!(!defaults.trust_proxy);
    assert_eq!(defaults.door_token_ttl_secs, 86_400);
}

#[test]
fn misspelled_names_stop_start_up_naming_the_nearest_setting() {
    for (typo, meant) in [
        ("CHAT_BCRYPT_COS", "CHAT_BCRYPT_COST"),
        ("CHAT_JWT_SECRTE", "CHAT_JWT_SECRET"),
        ("CHAT_DOOR_AVITTO", "CHAT_DOOR_AVITO"),
    ] {
        let error = Settings::from_vars([(typo, "4")]).unwrap_err();
        assert_eq!(
            error,
            format!("{typo} is not a setting (did you mean {meant}?)")
        );
    }
    let error =
        Settings::check_names(["bcrypt_cost", "bcrypt_cos"], Some("chat.toml")).unwrap_err();
    assert!(
        error.contains("\"bcrypt_cos\"") && error.contains("\"bcrypt_cost\""),
        "{error}"
    );
    assert!(Settings::check_names(["listen", "database_url"], Some("chat.toml")).is_ok());
    assert!(Settings::check_names(["CHAT_CONFIG", "RUST_LOG", "PATH"], None).is_ok());
    // Kubernetes' service links for a Service named "chat" are not typos.
    let links = [
        "CHAT_SERVICE_HOST",
        "CHAT_SERVICE_PORT_HTTP",
        "CHAT_PORT",
        "CHAT_PORT_8080_TCP_ADDR",
    ];
    assert!(Settings::check_names(links, None).is_ok());
    assert!(Settings::check_names(["config"], Some("chat.toml")).is_err());
}

#[test]
fn the_public_url_is_a_scheme_and_a_host() {
    for good in ["https://chat.example.com", "http://127.0.0.1:8080/"] {
        let settings = Settings::from_vars([("CHAT_PUBLIC_URL", good)]).unwrap();
        assert_eq!(settings.public_url.as_deref(), Some(good));
    }
    for bad in ["chat.example.com", "https://", "https://x/path", "ftp://x"] {
        let error = Settings::from_vars([("CHAT_PUBLIC_URL", bad)]).unwrap_err();
        assert!(error.contains("CHAT_PUBLIC_URL"), "{bad}: {error}");
    }
}

#[test]
fn variables_are_read_and_checked_like_the_environment() {
    let settings = Settings::from_vars([
        ("CHAT_BCRYPT_COST", "5"),
        ("CHAT_TRUST_PROXY", "true"),
        ("RUST_LOG", "x"),
    ])
    .unwrap();
    assert_eq!(settings.bcrypt_cost, 5);
    assert!(settings.trust_proxy);
    assert!(
        Settings::from_vars([("CHAT_NO_SUCH", "1")])
            .unwrap_err()
            .contains("CHAT_NO_SUCH")
    );
    assert!(
        Settings::from_vars([("CHAT_BCRYPT_COST", "99")])
            .unwrap_err()
            .contains("CHAT_BCRYPT_COST")
    );
}

#[test]
fn validation_names_the_variable() {
    let settings = Settings {
        bcrypt_cost: 3,
        ..Settings::default()
    };
    assert!(
        settings
            .validate()
            .unwrap_err()
            .contains("CHAT_BCRYPT_COST")
    );
    let settings = Settings {
        listen: "nowhere".into(),
        ..Settings::default()
    };
    assert!(settings.validate().unwrap_err().contains("CHAT_LISTEN"));
    for writers in [0, 17] {
        let settings = Settings {
            db_writers: writers,
            ..Settings::default()
        };
        assert!(settings.validate().unwrap_err().contains("CHAT_DB_WRITERS"));
    }
    let settings = Settings::from_vars([("CHAT_DB_WRITERS", "2")]).unwrap();
    assert_eq!(settings.db_writers, 2);
}
